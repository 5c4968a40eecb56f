-- A PDF an agency's back end posted for a person to sign (the document
-- API): Tuaton keeps the file, shows it to the person who opens the
-- signing page, signs it (PAdES B-T) once they confirm with a passkey, and
-- keeps the signed file for the agency to fetch. Files are stored as
-- base64 text, as certificates are.
CREATE TABLE agency_documents (
    id              TEXT   PRIMARY KEY,
    -- The agency's client that posted it; only it reads the document back.
    client_id       TEXT   NOT NULL,
    -- The client's `sub` of the one person who may sign it; NULL: whoever
    -- opens the page and logs in.
    subject         TEXT,
    name            TEXT   NOT NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT   NOT NULL,
    pages           BIGINT NOT NULL,
    content_base64  TEXT   NOT NULL,
    -- Where the person's browser goes afterwards (registered for the
    -- client), and the agency's `state` to carry there.
    redirect_uri    TEXT   NOT NULL,
    client_state    TEXT,
    state           TEXT   NOT NULL CHECK (state IN ('pending', 'signed', 'declined')),
    -- The signing request the page began last.
    signing_request TEXT,
    signed_base64   TEXT,
    -- The client's `sub` of the person who signed.
    signer_subject  TEXT,
    created_ms      BIGINT NOT NULL,
    expires_ms      BIGINT NOT NULL,
    done_ms         BIGINT,
    CHECK ((state = 'signed') = (signed_base64 IS NOT NULL)),
    CHECK ((state = 'pending') = (done_ms IS NULL))
);
CREATE INDEX agency_documents_by_client ON agency_documents (client_id, created_ms);
