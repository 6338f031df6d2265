"""The application around the core: settings, wiring, the CLI, the web app and the worker."""
