"""One module per console section; each adds its routes to ``offerloop.console.web.router``."""
