"""RLModules and their parts: agent network, CGI head and loss, mixers, team distributions."""
