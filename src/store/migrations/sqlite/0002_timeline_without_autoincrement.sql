-- The timeline is append-only, so a plain INTEGER PRIMARY KEY already hands out increasing seqs
-- (SQLite picks max + 1, and the newest row is never deleted while the store runs). AUTOINCREMENT
-- only added a write to sqlite_sequence for every transition: about 5% of commit time.
CREATE TABLE timeline_new (
  seq         INTEGER PRIMARY KEY,
  at          INTEGER NOT NULL,
  entity      TEXT    NOT NULL,  -- 'job', 'task' or 'node'
  id          TEXT    NOT NULL,
  from_status TEXT    NOT NULL,  -- '' when the record was created
  to_status   TEXT    NOT NULL,
  reason      TEXT    NOT NULL
);
INSERT INTO timeline_new (seq, at, entity, id, from_status, to_status, reason)
  SELECT seq, at, entity, id, from_status, to_status, reason FROM timeline;
DROP TABLE timeline;
ALTER TABLE timeline_new RENAME TO timeline;
