"""Grafana dashboards shipped as package data (`dashboards/` in the source tree)."""
