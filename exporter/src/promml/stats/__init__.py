"""Pure statistics shared by the baseline builder and the exporter: numpy arrays in, numbers out, no I/O."""
