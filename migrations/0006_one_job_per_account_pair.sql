-- One mailbox pair, one job: two sign-ins or imports for the same pair at once must not
-- create two jobs that copy the same mailbox side by side. The engine finds its job with
-- INSERT ... ON CONFLICT DO NOTHING on this index. No database with duplicate pairs was
-- ever deployed; should one exist, this migration fails (naming the index) rather than
-- silently merging two jobs' UID maps.
DROP INDEX jobs_accounts;
CREATE UNIQUE INDEX jobs_account_pair ON jobs (source_account, target_account);
