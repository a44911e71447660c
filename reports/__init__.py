"""Jinja2 templates of the weekly review and the alert e-mail, shipped as `pipeline.templates`."""
