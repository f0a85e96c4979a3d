"""Images and degradations: image I/O, MATLAB-style imresize, the degradation model, the standard image sets."""
