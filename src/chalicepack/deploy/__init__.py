"""After the zips: SAM/Terraform templates (chalice's own generator, in a child process) and
layer publishing."""
