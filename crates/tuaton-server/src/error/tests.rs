use super::field_problem;

const PREFIX: &str = "Failed to deserialize the JSON body into the target type: ";

#[test]
fn field_problems_name_the_field_never_the_value() {
    let cases = [
        (
            "citizen_id: invalid type: integer `1999000000017`, expected a string at line 1 column 30",
            "The field `citizen_id` has the wrong type or value.",
        ),
        (
            "evidence.laser_code: invalid type: string \"JT0-1234567-89\", expected u8",
            "The field `evidence.laser_code` has the wrong type or value.",
        ),
        (
            ".: missing field `citizen_id` at line 1 column 2",
            "The field `citizen_id` is missing.",
        ),
        (
            "attestation: missing field `method`",
            "The field `method` is missing in `attestation`.",
        ),
        (
            ".: unknown field `pin`, expected one of `citizen_id`, `laser_code`",
            "The field `pin` is not accepted here.",
        ),
        (
            "attestation.method: unknown variant `hunch`, expected `chip_read` or `laser_code_checked`",
            "The field `attestation.method` has the wrong type or value.",
        ),
    ];
    for (serde, want) in cases {
        let got = field_problem(&format!("{PREFIX}{serde}"));
        assert_eq!(got, want, "{serde}");
        for value in ["1999000000017", "JT0-1234567-89", "hunch", "tuaton_"] {
            assert!(!got.contains(value), "{got}");
        }
    }
}
