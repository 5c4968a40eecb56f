//! Storage errors.

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no engine Tuaton supports. Operator's configuration.
    #[error(
        "unsupported database URL scheme `{scheme}`; use sqlite:// (or a file path) or postgres://"
    )]
    UnsupportedUrl {
        /// The scheme found.
        scheme: String,
    },
    /// The database could not be reached or refused the connection. Environment; retryable.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A migration failed; the schema is left as the engine's transaction left it. Operator or bug.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Migrations are pending and this role may not apply them (a service
    /// role without rights on the schema). Operator: run `tuaton migrate`
    /// as the schema's owner.
    #[error(
        "{pending} database migration(s) are pending and this database role cannot apply them; run `tuaton migrate` as the schema's owner"
    )]
    MigrationsPending {
        /// How many.
        pending: usize,
    },
    /// A uniqueness or foreign-key constraint refused the write. Usually the caller's input.
    #[error("the write conflicts with existing data ({constraint})")]
    Conflict {
        /// The constraint or a short description.
        constraint: String,
    },
    /// A row expected to exist does not. Caller's input.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, without personal data.
        what: &'static str,
    },
    /// A stored value could not be decoded: a bug or a tampered row.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error. Bug or environment.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// The stable code a client is answered with.
    pub fn code(&self) -> tuaton_core::ErrorCode {
        use tuaton_core::ErrorCode as C;
        match self {
            Self::Unavailable(_) => C::DatabaseUnavailable,
            Self::Conflict { .. } => C::Conflict,
            Self::NotFound { .. } => C::NotFound,
            Self::UnsupportedUrl { .. }
            | Self::Migration(_)
            | Self::MigrationsPending { .. }
            | Self::Corrupt(_)
            | Self::Database(_) => C::InternalError,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db)
                if db.is_unique_violation()
                    || db.is_foreign_key_violation()
                    || db.is_check_violation() =>
            {
                StoreError::Conflict {
                    constraint: db.constraint().unwrap_or("constraint").to_owned(),
                }
            }
            sqlx::Error::RowNotFound => StoreError::NotFound { what: "row" },
            // A stored value that does not read back as its type.
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            _ => StoreError::Database(e),
        }
    }
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
