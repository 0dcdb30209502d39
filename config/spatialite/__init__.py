"""The SpatiaLite database backend of the embedded default, made fit for concurrent use."""
