"""The bottom layer: vocabulary, errors, config, redaction, assets and rendering. Imports nothing above it."""
