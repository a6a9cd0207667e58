-- A repeated Idempotency-Key must carry the same request: keep a fingerprint of it. A row with
-- status 0 is a request still being handled.
ALTER TABLE idempotency_keys ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
