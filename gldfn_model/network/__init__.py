"""The GLDFN network: config, dynamic filter layers, the model, its complexity counter and checkpoints."""
