//! Session tags (ABAC): resolved from the person as the target says, sent to STS with their
//! transitive keys, refused before STS (and audited) when they break AWS's limits; configured
//! on role targets only; and any change to them is a weakening that needs the admin's code.

use cooper_core::admin::{AdminError, TargetSpec};
use cooper_core::audit::AuditEvent;
use cooper_core::issue::IssueError;
use cooper_core::memory::{BrokerCall, MemoryWorld};
use cooper_core::tags::{
    PersonAttribute, SessionTagSpec, SessionTagSpecs, TagKey, TagSource, TagValue,
};

use crate::admin::{admin_world, config, ctx, refused};
use crate::given::*;

fn key(k: &str) -> TagKey {
    TagKey::parse(k).unwrap()
}

fn from(k: &str, attribute: PersonAttribute, transitive: bool) -> SessionTagSpec {
    SessionTagSpec {
        key: key(k),
        source: TagSource::Person(attribute),
        transitive,
    }
}

fn fixed(k: &str, v: &str) -> SessionTagSpec {
    SessionTagSpec {
        key: key(k),
        source: TagSource::Fixed(TagValue::parse(v).unwrap()),
        transitive: false,
    }
}

fn specs(tags: Vec<SessionTagSpec>) -> SessionTagSpecs {
    SessionTagSpecs::new(tags).unwrap()
}

/// Account A with a role target `a-tagged` that carries `tags`, granted to `user` (in `groups`).
fn tagged_world(tags: SessionTagSpecs, person: &str, groups: &[&str]) -> MemoryWorld {
    let w = MemoryWorld::new();
    w.account(A).unwrap();
    let mut t = w.role_target("a-tagged", A, 10).unwrap();
    t.set_session_tags(tags).unwrap();
    w.put_target(t).unwrap();
    w.user(person).unwrap();
    for g in groups {
        w.group(g).unwrap();
        w.member(person, g).unwrap();
    }
    w.grant_target(as_user(person), "a-tagged").unwrap();
    w
}

fn the_tags_sent(w: &MemoryWorld) -> (Vec<(String, String)>, Vec<String>) {
    let calls = w.broker.calls();
    let [BrokerCall::AssumeRole(call)] = calls.as_slice() else {
        panic!("one AssumeRole: {calls:?}");
    };
    (
        call.tags
            .iter()
            .map(|t| (t.key.to_string(), t.value.to_string()))
            .collect(),
        call.transitive.iter().map(ToString::to_string).collect(),
    )
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_persons_tags_reach_sts_as_configured_with_their_transitive_keys() -> TestResult {
    let w = tagged_world(
        specs(vec![
            from("cooper-user", PersonAttribute::User, true),
            from("email", PersonAttribute::Email, false),
            from("groups", PersonAttribute::Groups, true),
            fixed("team", "payments"),
        ]),
        "alice@example.com",
        &["ops", "eng"],
    );
    w.issuer()
        .issue(
            w.identity("alice@example.com")?,
            &ask("a-tagged"),
            &w.meta(),
        )
        .await?;
    let (tags, transitive) = the_tags_sent(&w);
    assert_eq!(
        tags,
        pairs(&[
            ("cooper-user", "alice@example.com"),
            ("email", "alice@example.com"),
            ("groups", "eng+ops"),
            ("team", "payments"),
        ])
    );
    assert_eq!(transitive, ["cooper-user", "groups"]);
    assert_eq!(last_record(&w).event, AuditEvent::CredentialsIssued);
    Ok(())
}

#[tokio::test]
async fn groups_an_identity_provider_asserts_are_the_persons_groups_too() -> TestResult {
    let w = tagged_world(
        specs(vec![from("groups", PersonAttribute::Groups, false)]),
        "bob@example.com",
        &["eng"],
    );
    w.issuer()
        .issue(
            oidc("bob@example.com", &["okta:sre"]),
            &ask("a-tagged"),
            &w.meta(),
        )
        .await?;
    assert_eq!(the_tags_sent(&w).0, pairs(&[("groups", "eng+okta:sre")]));
    Ok(())
}

#[tokio::test]
async fn a_target_without_tags_sends_none() -> TestResult {
    let w = MemoryWorld::new();
    w.account(A)?;
    w.role_target("a-ro", A, 10)?;
    w.user("alice")?;
    w.grant_target(as_user("alice"), "a-ro")?;
    w.issuer()
        .issue(w.identity("alice")?, &ask("a-ro"), &w.meta())
        .await?;
    assert_eq!(the_tags_sent(&w), (Vec::new(), Vec::new()));
    Ok(())
}

/// `person` (in `groups`) asks for a target whose `tags` cannot be set for them: refused with
/// `code`, audited as a denial, and STS never called.
async fn refused_before_sts(tags: SessionTagSpecs, person: &str, groups: &[&str], code: &str) {
    let w = tagged_world(tags, person, groups);
    let err = w
        .issuer()
        .issue(w.identity(person).unwrap(), &ask("a-tagged"), &w.meta())
        .await
        .unwrap_err();
    let IssueError::SessionTags(e) = &err else {
        panic!("a session-tag refusal: {err}");
    };
    assert_eq!(e.code(), code, "{err}");
    assert!(w.broker.calls().is_empty(), "STS is never called ({code})");
    let record = last_record(&w);
    assert_eq!(record.event, AuditEvent::CredentialsDenied);
    assert_eq!(record.reason.as_deref(), Some(code));
    assert_eq!(record.target, Some(target("a-tagged")));
}

#[tokio::test]
async fn each_limit_the_persons_values_break_is_refused_before_sts_with_its_code() {
    let one = |a| specs(vec![from("t", a, false)]);
    // No email to give: the user name is not one.
    refused_before_sts(
        one(PersonAttribute::Email),
        "alice",
        &[],
        "session_tag_unresolved",
    )
    .await;
    // AWS's characters: a comma is fine in a user name, not in a tag.
    refused_before_sts(
        one(PersonAttribute::User),
        "smith,alice",
        &[],
        "session_tag_invalid_characters",
    )
    .await;
    refused_before_sts(
        one(PersonAttribute::Groups),
        "alice",
        &["Payments (EU)"],
        "session_tag_invalid_characters",
    )
    .await;
    // A group holding the separator would read as two groups.
    refused_before_sts(
        one(PersonAttribute::Groups),
        "alice",
        &["eng+admins"],
        "session_tag_invalid_characters",
    )
    .await;
    // 256 characters: twenty groups of 15 join to 319.
    let many: Vec<String> = (0..20).map(|i| format!("group-number-{i:02}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    refused_before_sts(
        one(PersonAttribute::Groups),
        "alice",
        &many,
        "session_tag_too_long",
    )
    .await;
    // The packed size: each value fits, together they do not.
    refused_before_sts(
        specs(vec![
            from("g1", PersonAttribute::Groups, false),
            from("g2", PersonAttribute::Groups, false),
        ]),
        "alice",
        &many[..14],
        "session_tags_too_large",
    )
    .await;
}

#[test]
fn each_limit_a_configuration_breaks_is_refused_when_it_is_made() {
    let err = |tags: Vec<SessionTagSpec>| SessionTagSpecs::new(tags).unwrap_err().to_string();
    let fifty_one = (0..51).map(|i| fixed(&format!("k{i}"), "")).collect();
    assert!(err(fifty_one).contains("at most 50"));
    assert!(err(vec![fixed("Team", "a"), fixed("team", "b")]).contains("twice"));
    assert!(
        err(vec![
            fixed(&"k".repeat(128), &"v".repeat(256)),
            fixed("more", &"v".repeat(100)),
        ])
        .contains("pack")
    );
    assert!(TagKey::parse("aws:team").is_err());
    assert!(TagKey::parse("AWS:team").is_err());
    assert!(TagKey::parse(&"k".repeat(129)).is_err());
    assert!(TagValue::parse(&"v".repeat(257)).is_err());
    assert!(TagValue::parse("a,b").is_err());
}

fn with_tags(w: &MemoryWorld, name: &str, tags: SessionTagSpecs) -> TargetSpec {
    let stored = w.state().unwrap().targets[&target(name)].value.clone();
    TargetSpec {
        session_tags: tags,
        ..TargetSpec::from(stored)
    }
}

#[tokio::test]
async fn a_federated_user_target_takes_no_session_tags() -> TestResult {
    let w = admin_world();
    w.federated_target("a-fed", A, 10)?;
    let admin = w.admin(config());
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    let before = w.state()?;
    let err = admin
        .update_target(
            &c,
            with_tags(&w, "a-fed", specs(vec![fixed("team", "payments")])),
            Some(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AdminError::Invalid(v) if v.field == "session_tags"),
        "{err}"
    );
    nothing_changed(&w, &before);
    Ok(())
}

#[tokio::test]
async fn any_change_to_a_targets_session_tags_needs_the_admins_code() -> TestResult {
    let w = admin_world();
    let admin = w.admin(config());
    let tagged = specs(vec![fixed("team", "payments"), fixed("env", "prod")]);

    // Adding tags: refused without the code, made with it.
    let before = w.state()?;
    let c = ctx(&w, &admin, "root", None).await?;
    refused(
        &w,
        &before,
        admin
            .update_target(&c, with_tags(&w, "a-ro", tagged.clone()), Some(1))
            .await,
        "totp_required",
    );
    let c = ctx(&w, &admin, "root", Some(w.code("root")?)).await?;
    let made = admin
        .update_target(&c, with_tags(&w, "a-ro", tagged), Some(1))
        .await?;
    assert_eq!(made.value.session_tags.as_slice().len(), 2);

    // The same tags in another order change nothing that matters.
    let c = ctx(&w, &admin, "root", None).await?;
    let reordered = specs(vec![fixed("env", "prod"), fixed("team", "payments")]);
    admin
        .update_target(&c, with_tags(&w, "a-ro", reordered), Some(2))
        .await?;

    // Another value, transitivity, or none at all: each needs the code (a tag may be what
    // a Deny reads).
    for changed in [
        specs(vec![fixed("team", "platform"), fixed("env", "prod")]),
        specs(vec![
            fixed("team", "payments"),
            SessionTagSpec {
                transitive: true,
                ..fixed("env", "prod")
            },
        ]),
        SessionTagSpecs::default(),
    ] {
        let before = w.state()?;
        let c = ctx(&w, &admin, "root", None).await?;
        refused(
            &w,
            &before,
            admin
                .update_target(&c, with_tags(&w, "a-ro", changed), Some(3))
                .await,
            "totp_required",
        );
    }
    Ok(())
}
