//! The SAML profile against fixed fixtures (tests/saml/fixtures, signed with xmlsec1 by
//! tests/saml/make_fixtures.py): the good ones read, and each forgery refused with its own code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde_json::json;
use time::macros::datetime;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/saml/fixtures/",
            $name
        ))
    };
}

const REQUEST: &str = "_0123456789abcdef0123456789abcdef";
const NOW: OffsetDateTime = datetime!(2026-01-01 12:01:00 UTC);

fn jwt() -> Arc<JwtAuthority> {
    Arc::new(
        JwtAuthority::new(
            &SecretString::from(STANDARD.encode([7u8; 32])),
            "cooper",
            "cooper-api",
        )
        .unwrap(),
    )
}

fn providers_with(extra: serde_json::Value) -> SamlProviders {
    let mut config = json!({
        "name": "corp",
        "entity_id": "https://idp.example.com/saml",
        "sso_url": "https://idp.example.com/sso",
        "certificates": [fixture!("idp.crt"), fixture!("ec.crt")],
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    SamlProviders::parse(
        &json!([config]).to_string(),
        Some("https://cooper.example.com"),
        jwt(),
    )
    .unwrap()
    .unwrap()
}

fn read_at(saml: &SamlProviders, xml: &str, now: OffsetDateTime) -> Result<Asserted, SamlError> {
    let provider = saml.provider("corp").unwrap();
    saml.verify(provider, &STANDARD.encode(xml), now)
}

fn read(xml: &str) -> Result<Asserted, SamlError> {
    read_at(&providers_with(json!({})), xml, NOW)
}

fn code(result: Result<Asserted, SamlError>) -> &'static str {
    match result {
        Ok(a) => panic!("accepted: {a:?}"),
        Err(e) => e.code(),
    }
}

#[test]
fn a_signed_assertion_or_response_from_the_idp_is_read_from_what_is_signed() {
    for xml in [
        fixture!("assertion-signed.xml"),
        fixture!("response-signed.xml"),
        fixture!("both-signed.xml"),
        fixture!("ecdsa.xml"),
    ] {
        let asserted = read(xml).unwrap();
        assert_eq!(asserted.name_id, "alice@example.com");
        assert_eq!(asserted.in_response_to.as_deref(), Some(REQUEST));
        assert!(asserted.assertion_id.starts_with("_assert-"));
        assert_eq!(asserted.valid_until, datetime!(2026-01-01 12:05:00 UTC));
        let groups = asserted
            .attributes
            .iter()
            .find(|(n, _)| n == "groups")
            .map(|(_, v)| v.clone());
        assert_eq!(groups, Some(vec!["eng".to_owned(), "ops".to_owned()]));
    }
}

#[test]
fn every_kind_of_forged_response_is_refused_with_its_own_code() {
    let cases = [
        ("unsigned.xml", fixture!("unsigned.xml"), "saml_unsigned"),
        (
            "other-key.xml",
            fixture!("other-key.xml"),
            "saml_bad_signature",
        ),
        (
            "tampered.xml",
            fixture!("tampered.xml"),
            "saml_bad_signature",
        ),
        (
            "wrap-sibling.xml",
            fixture!("wrap-sibling.xml"),
            "saml_wrapped",
        ),
        (
            "wrap-parent.xml",
            fixture!("wrap-parent.xml"),
            "saml_wrapped",
        ),
        (
            "wrap-response.xml",
            fixture!("wrap-response.xml"),
            "saml_wrapped",
        ),
        ("sha1.xml", fixture!("sha1.xml"), "saml_weak_algorithm"),
        ("doctype.xml", fixture!("doctype.xml"), "saml_doctype"),
        (
            "wrong-audience.xml",
            fixture!("wrong-audience.xml"),
            "saml_wrong_audience",
        ),
        (
            "wrong-recipient.xml",
            fixture!("wrong-recipient.xml"),
            "saml_wrong_recipient",
        ),
        (
            "wrong-destination.xml",
            fixture!("wrong-destination.xml"),
            "saml_wrong_destination",
        ),
        (
            "status-failed.xml",
            fixture!("status-failed.xml"),
            "saml_status",
        ),
    ];
    for (name, xml, expected) in cases {
        assert_eq!(code(read(xml)), expected, "{name}");
    }
}

#[test]
fn the_idp_status_is_named_and_times_hold_with_a_small_skew() {
    let Err(SamlError::Status { status, message }) = read(fixture!("status-failed.xml")) else {
        panic!("a failed status is refused as such");
    };
    assert_eq!(status, "Responder/AuthnFailed");
    assert_eq!(message.as_deref(), Some("bad password"));

    let saml = providers_with(json!({}));
    let good = fixture!("assertion-signed.xml");
    // NotOnOrAfter 12:05 and NotBefore 11:59, with 90 seconds of skew.
    assert!(read_at(&saml, good, datetime!(2026-01-01 12:06:00 UTC)).is_ok());
    assert_eq!(
        code(read_at(&saml, good, datetime!(2026-01-01 12:07:00 UTC))),
        "saml_expired"
    );
    assert!(read_at(&saml, good, datetime!(2026-01-01 11:58:00 UTC)).is_ok());
    assert_eq!(
        code(read_at(&saml, good, datetime!(2026-01-01 11:57:00 UTC))),
        "saml_not_yet_valid"
    );
}

#[test]
fn sha1_is_accepted_only_from_a_provider_configured_for_it() {
    let saml = providers_with(json!({"allow_sha1": true}));
    assert_eq!(
        read_at(&saml, fixture!("sha1.xml"), NOW).unwrap().name_id,
        "alice@example.com"
    );
}

#[test]
fn a_comment_inside_the_name_id_does_not_cut_the_identity_short() {
    // Signed as admin@evil.example; `<!---->` after `admin` leaves the signature valid
    // (exclusive c14n drops comments). Reading the first text node would give `admin`.
    let asserted = read(fixture!("comment-nameid.xml")).unwrap();
    assert_eq!(asserted.name_id, "admin@evil.example");
    let saml = providers_with(json!({"email_domains": ["example.com"]}));
    let asserted = read_at(&saml, fixture!("comment-nameid.xml"), NOW).unwrap();
    let provider = saml.provider("corp").unwrap();
    assert_eq!(
        saml.identity(provider, &asserted).unwrap_err().code(),
        "email_domain_not_allowed"
    );
}

#[test]
fn groups_are_namespaced_by_provider_and_mapped_by_its_pattern() {
    let saml = providers_with(json!({}));
    let provider = saml.provider("corp").unwrap();
    let asserted = read_at(&saml, fixture!("assertion-signed.xml"), NOW).unwrap();
    let identity = saml.identity(provider, &asserted).unwrap();
    assert_eq!(identity.user.as_str(), "alice@example.com");
    let groups: Vec<&str> = identity
        .asserted_groups
        .iter()
        .map(|g| g.as_str())
        .collect();
    assert_eq!(groups, ["corp:eng", "corp:ops"]);
    assert_eq!(identity.method.idp(), Some("saml:corp"));

    let saml = providers_with(json!({
        "groups_attribute": "https://aws.amazon.com/SAML/Attributes/Role",
        "group_pattern": r"^arn:aws:iam::\d+:role/(?P<group>[^,]+),",
        "group_prefix": "okta/",
    }));
    let provider = saml.provider("corp").unwrap();
    let asserted = read_at(&saml, fixture!("role-attribute.xml"), NOW).unwrap();
    let identity = saml.identity(provider, &asserted).unwrap();
    let groups: Vec<&str> = identity
        .asserted_groups
        .iter()
        .map(|g| g.as_str())
        .collect();
    assert_eq!(groups, ["okta/Engineers"]);

    // The user from an attribute instead of the NameID.
    let saml = providers_with(json!({"user_attribute": "email"}));
    let provider = saml.provider("corp").unwrap();
    let identity = saml.identity(provider, &asserted).unwrap();
    assert_eq!(identity.user.as_str(), "alice@example.com");
}

#[test]
fn an_oversized_or_undecodable_response_is_refused_before_it_is_parsed() {
    let saml = providers_with(json!({}));
    let provider = saml.provider("corp").unwrap();
    let huge = "A".repeat(profile::MAX_XML_BYTES * 2);
    assert_eq!(
        saml.verify(provider, &huge, NOW).unwrap_err().code(),
        "saml_too_large"
    );
    assert_eq!(
        saml.verify(provider, "not base64!", NOW)
            .unwrap_err()
            .code(),
        "saml_malformed"
    );
    assert_eq!(
        saml.verify(provider, &STANDARD.encode("<a><b></a>"), NOW)
            .unwrap_err()
            .code(),
        "saml_malformed"
    );
}

#[test]
fn a_relay_state_is_good_only_for_its_request_provider_and_time() {
    let saml = providers_with(json!({}));
    let provider = saml.provider("corp").unwrap();
    let relay = Relay {
        destination: Destination::Cli(53682),
        binding: binding_of("a verifier's challenge"),
    };
    let state = saml.relay_state(provider, REQUEST, &relay, NOW);
    assert!(state.len() <= 80, "{state}");
    let (back, expires) = saml.relay(provider, REQUEST, &state, NOW).unwrap();
    assert_eq!(back, relay);
    assert_eq!(expires, NOW + time::Duration::seconds(REQUEST_SECONDS));
    // Another request's id, a changed byte, too late.
    assert!(saml.relay(provider, "_another", &state, NOW).is_err());
    let mut changed = state.clone();
    changed.replace_range(0..1, if state.starts_with('9') { "8" } else { "9" });
    assert!(saml.relay(provider, REQUEST, &changed, NOW).is_err());
    assert!(saml.relay(provider, REQUEST, &state, expires).is_err());
    // The same request id under another provider's name.
    let other = SamlProviders::parse(
        &json!([{
            "name": "other", "entity_id": "https://idp.example.com/saml",
            "sso_url": "https://idp.example.com/sso", "certificates": [fixture!("idp.crt")],
        }])
        .to_string(),
        Some("https://cooper.example.com"),
        jwt(),
    )
    .unwrap()
    .unwrap();
    let other_provider = other.provider("other").unwrap();
    assert!(other.relay(other_provider, REQUEST, &state, NOW).is_err());
}

#[test]
fn an_unsound_provider_configuration_does_not_start() {
    let parse = |config: serde_json::Value, url: Option<&str>| {
        SamlProviders::parse(&json!([config]).to_string(), url, jwt()).err()
    };
    let base = json!({
        "name": "corp", "entity_id": "https://idp.example.com/saml",
        "sso_url": "https://idp.example.com/sso", "certificates": [fixture!("idp.crt")],
    });
    let with = |key: &str, value: serde_json::Value| {
        let mut c = base.clone();
        c[key] = value;
        c
    };
    let url = Some("https://cooper.example.com");
    assert!(parse(base.clone(), url).is_none());
    for (config, why) in [
        (with("certificates", json!([])), "certificate"),
        (
            with("certificates", json!(["not a certificate"])),
            "certificate",
        ),
        (with("name", json!("Corp Okta")), "name"),
        (
            with("sso_url", json!("http://idp.example.com/sso")),
            "https",
        ),
        (with("group_prefix", json!("")), "group_prefix"),
        (with("group_pattern", json!("^(?P<other>.*)$")), "group"),
        (with("allow_unsigned", json!(true)), "unknown field"),
    ] {
        let err = parse(config, url).expect(why).to_string();
        assert!(err.contains(why), "{why}: {err}");
    }
    assert!(matches!(
        parse(base, None),
        Some(SamlConfigError::NoPublicUrl)
    ));
}

#[test]
fn the_console_reads_only_the_buttons_and_refuses_what_is_not_a_provider_list() {
    let corp = json!({
        "name": "corp", "display_name": "Corp Okta", "entity_id": "https://idp.example.com/saml",
        "sso_url": "https://idp.example.com/sso", "certificates": ["checked where SAML is read"],
    });
    let mut plain = corp.clone();
    plain["name"] = json!("plain");
    plain
        .as_object_mut()
        .map(|c| c.remove("display_name"))
        .unwrap();
    assert_eq!(
        buttons(&json!([corp, plain]).to_string()).unwrap(),
        [
            ("corp".to_owned(), "Corp Okta".to_owned()),
            ("plain".to_owned(), "plain".to_owned()),
        ]
    );
    assert!(buttons("  ").unwrap().is_empty());
    let mut bad_name = corp.clone();
    bad_name["name"] = json!("Corp Okta");
    let mut unknown = corp;
    unknown["allow_unsigned"] = json!(true);
    for (config, why) in [
        ("not json".to_owned(), "JSON"),
        (json!([bad_name]).to_string(), "name"),
        (json!([unknown]).to_string(), "unknown field"),
    ] {
        let err = buttons(&config).expect_err(why).to_string();
        assert!(err.contains(why), "{why}: {err}");
    }
}
