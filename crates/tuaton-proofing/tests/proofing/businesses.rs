//! Companies: fixture consistency and authority decisions.

use tuaton_core::{CitizenId, JuristicId};
use tuaton_proofing::{
    AuthorityDecision, CompanyStatus, DevJuristicRegistry, DevRegistry, JuristicRegistry,
    RegistryError, authorised,
};

use super::{SOMCHAI, SOMYING};

const ANY_ONE_CO: &str = "0105599000019";
const JOINTLY_TWO_CO: &str = "0105599000027";
const DISSOLVED_CO: &str = "0105599000035";
const THANAPHON: &str = "1999000000050";
const KAMALA: &str = "1999000000068";
const ANUCHA: &str = "1999000000076";
const WICHAI: &str = "1999000000033";

fn cid(s: &str) -> CitizenId {
    CitizenId::parse(s).unwrap()
}

async fn company(id: &str) -> tuaton_proofing::Company {
    DevJuristicRegistry::embedded()
        .unwrap()
        .lookup(&JuristicId::parse(id).unwrap())
        .await
        .unwrap()
}

#[test]
fn fixture_companies_have_directors_from_the_people_fixture() {
    let people = DevRegistry::embedded().unwrap();
    let companies = DevJuristicRegistry::embedded().unwrap();
    assert_eq!(companies.companies().count(), 4);
    for c in companies.companies() {
        assert!(c.id.compact().starts_with('0'));
        for d in &c.directors {
            assert!(
                people.person(d).is_some(),
                "director {d:?} of {} is not in people.json",
                c.id
            );
        }
    }
    assert!(
        companies
            .companies()
            .any(|c| c.status == CompanyStatus::Dissolved)
    );
}

#[tokio::test]
async fn a_director_acts_alone_under_any_one() {
    let c = company(ANY_ONE_CO).await;
    assert_eq!(
        authorised(&c, &[cid(SOMCHAI)]),
        AuthorityDecision::Authorised {
            directors: vec![cid(SOMCHAI)]
        }
    );
    assert!(authorised(&c, &[cid(THANAPHON)]).is_authorised());
}

#[tokio::test]
async fn a_non_director_is_refused_even_alongside_a_director() {
    let c = company(ANY_ONE_CO).await;
    assert_eq!(
        authorised(&c, &[cid(SOMYING)]),
        AuthorityDecision::NotADirector {
            citizens: vec![cid(SOMYING)]
        }
    );
    assert_eq!(
        authorised(&c, &[cid(SOMCHAI), cid(SOMYING)]),
        AuthorityDecision::NotADirector {
            citizens: vec![cid(SOMYING)]
        }
    );
    assert_eq!(authorised(&c, &[]), AuthorityDecision::NobodyActing);
}

#[tokio::test]
async fn jointly_two_needs_two_distinct_directors() {
    let c = company(JOINTLY_TWO_CO).await;
    assert_eq!(
        authorised(&c, &[cid(KAMALA)]),
        AuthorityDecision::NeedsMoreDirectors {
            required: 2,
            present: 1
        }
    );
    assert_eq!(
        authorised(&c, &[cid(KAMALA), cid(KAMALA)]),
        AuthorityDecision::NeedsMoreDirectors {
            required: 2,
            present: 1
        },
        "one director named twice is still one"
    );
    let d = authorised(&c, &[cid(ANUCHA), cid(KAMALA)]);
    assert!(d.is_authorised());
    assert!(authorised(&c, &[cid(ANUCHA), cid(KAMALA), cid(THANAPHON)]).is_authorised());
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["decision"], "authorised");
    assert_eq!(json["directors"][0], KAMALA);
}

#[tokio::test]
async fn nobody_acts_for_a_dissolved_company() {
    let c = company(DISSOLVED_CO).await;
    assert_eq!(
        authorised(&c, &[cid(WICHAI)]),
        AuthorityDecision::CompanyDissolved
    );
}

#[tokio::test]
async fn unknown_company_is_not_found() {
    let r = DevJuristicRegistry::embedded().unwrap();
    let mut d = [0u8, 1, 0, 5, 5, 9, 9, 0, 0, 0, 0, 9, 0];
    d[12] = tuaton_core::ids::check_digit(&d);
    let id: String = d.iter().map(|x| char::from(b'0' + x)).collect();
    assert_eq!(
        r.lookup(&JuristicId::parse(&id).unwrap()).await,
        Err(RegistryError::NotFound)
    );
}
