"""Evaluation as the field measures it: metrics (PSNR/SSIM conventions) and test-set evaluation."""
