"""The TAXII 2.1 server: discovery, API root, collections, objects, manifests, versions,
status resources and paging tokens.  Each authenticated partner sees only its own views."""
