-- Global schema kind, version 7: a key may be allowed to confirm destructive tools with the
-- `confirm` argument (for clients that cannot show confirmation dialogs). Off by default.
ALTER TABLE "global".api_keys ADD COLUMN allow_confirm_argument boolean NOT NULL DEFAULT false;
