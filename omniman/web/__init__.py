"""The operator web app: server-rendered Django + HTMX screens over the kernel's services and selectors."""
