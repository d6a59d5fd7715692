"""One module per concern; `meshlab.analysis.registry` lists the analyzers alphabetically."""
