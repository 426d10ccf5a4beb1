"""OAuth 2.1 resource server (issue 11): token verification, protected resource metadata, step-up."""
