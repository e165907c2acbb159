"""The core: vocabulary, errors, settings, names, formats, schema, database, files, the audit chain and the unit of work.

Nothing in ``catalog.core`` imports the services, the scanner's families or
the command line (``import-linter`` checks it). Importing this package loads
nothing heavy.
"""
