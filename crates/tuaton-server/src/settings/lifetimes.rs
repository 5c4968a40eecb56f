//! How long a login lasts, and how long records that are no longer live are
//! kept. What each default rests on is written on [`super::Settings`].

use super::fields::Whole;

pub(super) const SESSION_IDLE: Whole = Whole {
    name: "TUATON_SESSION_IDLE_SECS",
    default: 900,
    least: 60,
    most: 86_400,
    accepted: "whole seconds from 60 to 86400",
};
pub(super) const SESSION_ABSOLUTE: Whole = Whole {
    name: "TUATON_SESSION_ABSOLUTE_SECS",
    default: 43_200,
    least: 300,
    most: 2_592_000,
    accepted: "whole seconds from 300 to 2592000",
};
pub(super) const WITHDRAWN_CONSENT_RETENTION: Whole = Whole {
    name: "TUATON_WITHDRAWN_CONSENT_RETENTION_DAYS",
    default: 3650,
    least: 1,
    most: 36_500,
    accepted: "whole days from 1 to 36500",
};
pub(super) const NOTIFICATION_RETENTION: Whole = Whole {
    name: "TUATON_NOTIFICATION_RETENTION_DAYS",
    default: 90,
    least: 1,
    most: 3650,
    accepted: "whole days from 1 to 3650",
};
pub(super) const RECOVERY_COOLING_OFF: Whole = Whole {
    name: "TUATON_RECOVERY_COOLING_OFF_HOURS",
    default: 72,
    least: 1,
    most: 720,
    accepted: "whole hours from 1 to 720",
};
pub(super) const UPKEEP_INTERVAL: Whole = Whole {
    name: "TUATON_UPKEEP_INTERVAL_SECS",
    default: 30,
    least: 1,
    most: 3600,
    accepted: "whole seconds from 1 to 3600",
};
pub(super) const AUDIT_ANCHOR_INTERVAL: Whole = Whole {
    name: "TUATON_AUDIT_ANCHOR_INTERVAL_SECS",
    default: 300,
    least: 10,
    most: 86_400,
    accepted: "whole seconds from 10 to 86400",
};
