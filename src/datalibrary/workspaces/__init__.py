"""Self-service workspaces: catalog, provisioners, lifecycle, proxy, idle stop."""
