-- A message's identity across the folders of a label-style source (Gmail, or a Dovecot
-- with a virtual \All mailbox): `gm:<X-GM-MSGID>` when the server offers it, otherwise
-- `c:<size>:<internaldate>:<header hash>#<n>` (see backend/src/engine/gmail/identity.rs).
-- A re-run finds a message already copied under its identity and does not copy it again,
-- even when its labels (folders) changed in between. NULL for ordinary sources
-- (valid on SQLite and PostgreSQL).
ALTER TABLE uid_map ADD COLUMN message_identity TEXT;
CREATE INDEX uid_map_identity ON uid_map (job_id, message_identity);
