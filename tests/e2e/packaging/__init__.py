"""lambda-flow as another project uses it: the built wheel, `lambda-flow init`, the plugin."""
