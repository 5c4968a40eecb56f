-- One row that a grouped commit's flush rewrites: a durable write whose
-- fsync takes every commit before it to the disk. SQLite only; the row
-- exists on PostgreSQL too, unused, so both schemas stay the same.
CREATE TABLE store_flushes (
    id       INTEGER PRIMARY KEY,
    flushes  BIGINT  NOT NULL
);
INSERT INTO store_flushes (id, flushes) VALUES (1, 0);
