"""What the user gave: the Chalice project, its config and stage, the Lambda target and its
requirements."""
