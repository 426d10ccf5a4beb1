-- Global schema kind, version 13: key rotation (`support-mcp keys rotate ID`). Rotating makes a new
-- key with the same name, grants, scopes, confirm flag and expiry; the old key keeps working for a
-- grace period (its expires_at is brought forward) and records which key replaced it.
ALTER TABLE "global".api_keys
    ADD COLUMN replaced_by uuid REFERENCES "global".api_keys (id) ON DELETE SET NULL;
