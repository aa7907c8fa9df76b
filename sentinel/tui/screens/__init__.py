"""The dashboard's screens: incidents queue, incident detail, playbook, SQL console, sources."""
