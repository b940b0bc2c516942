"""The demo: a model server, its data and traffic, and the whole stack as local processes."""
