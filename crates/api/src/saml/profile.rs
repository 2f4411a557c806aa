//! cooper's SAML 2.0 Web Browser SSO profile checks, over a Response whose signatures the
//! `XmlSignatures` port verified. The values used are read from the signed element's own
//! canonical XML, parsed again on its own: what is read is what is signed, whatever else the
//! document holds (signature wrapping has nowhere to hide).

use bergshamra_xml::uppsala::{Document, NodeId};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::SamlError;
use super::dsig::{self, Signatures, XmlSignatures};

pub const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// The largest Response read (decoded): a signed assertion with many groups is a few tens of KiB.
pub const MAX_XML_BYTES: usize = 192 * 1024;

/// Signature algorithms accepted: RSA (PKCS#1 v1.5 and PSS) and ECDSA with SHA-2.
const STRONG_SIGNATURES: [&str; 8] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
    "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
];
const STRONG_DIGESTS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
/// Only for a provider configured with `allow_sha1` (an old ADFS).
const SHA1_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1_DIGEST: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// What the Response must match.
pub struct Expected<'a> {
    pub idp_entity_id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub now: OffsetDateTime,
    pub skew: Duration,
    pub allow_sha1: bool,
}

/// What a verified assertion says.
#[derive(Debug, PartialEq, Eq)]
pub struct Asserted {
    pub assertion_id: String,
    /// The request it answers (absent: IdP-initiated).
    pub in_response_to: Option<String>,
    /// The NameID, its text nodes joined (a comment inside it cannot cut it short).
    pub name_id: String,
    pub attributes: Vec<(String, Vec<String>)>,
    /// After this it is refused for its age anyway (how long its id must be remembered).
    pub valid_until: OffsetDateTime,
}

fn allowed(element: &dsig::SignedElement, allow_sha1: bool) -> bool {
    let signature = element.signature_method.as_str();
    let digest = element.digest_method.as_str();
    (STRONG_SIGNATURES.contains(&signature) || (allow_sha1 && signature == SHA1_SIGNATURE))
        && (STRONG_DIGESTS.contains(&digest) || (allow_sha1 && digest == SHA1_DIGEST))
}

fn children(doc: &Document<'_>, parent: NodeId, ns: &str, name: &str) -> Vec<NodeId> {
    doc.child_elements_by_name_ns(parent, ns, name)
}

fn first(doc: &Document<'_>, parent: NodeId, ns: &str, name: &str) -> Option<NodeId> {
    doc.first_child_element_by_name_ns(parent, ns, name)
}

fn text(doc: &Document<'_>, node: NodeId) -> String {
    doc.text_content_deep(node).trim().to_owned()
}

fn time_of(
    doc: &Document<'_>,
    node: NodeId,
    attribute: &str,
) -> Result<Option<OffsetDateTime>, SamlError> {
    match doc.get_attribute(node, attribute) {
        None => Ok(None),
        Some(value) => OffsetDateTime::parse(value, &Rfc3339)
            .map(Some)
            .map_err(|_| SamlError::Malformed(format!("{attribute} is not a UTC date-time"))),
    }
}

/// The status of a Response that is not Success, named as the IdP named it.
fn status(doc: &Document<'_>, response: NodeId) -> Result<(), SamlError> {
    let code = first(doc, response, PROTOCOL, "Status")
        .and_then(|s| first(doc, s, PROTOCOL, "StatusCode"))
        .ok_or_else(|| SamlError::Malformed("the Response has no StatusCode".into()))?;
    let value = doc.get_attribute(code, "Value").unwrap_or_default();
    if value == SUCCESS {
        return Ok(());
    }
    let short = |uri: &str| {
        uri.rsplit(':')
            .next()
            .unwrap_or(uri)
            .chars()
            .take(64)
            .collect::<String>()
    };
    let mut named = short(value);
    if let Some(sub) =
        first(doc, code, PROTOCOL, "StatusCode").and_then(|s| doc.get_attribute(s, "Value"))
    {
        named = format!("{named}/{}", short(sub));
    }
    let message = doc
        .parent(code)
        .and_then(|s| first(doc, s, PROTOCOL, "StatusMessage"))
        .map(|m| {
            text(doc, m)
                .chars()
                .filter(|c| !c.is_control())
                .take(128)
                .collect::<String>()
        });
    Err(SamlError::Status {
        status: named,
        message,
    })
}

/// Reads a Response (decoded XML) and returns what its signed assertion says, or why not.
pub fn read(
    xml: &str,
    signatures: &dyn XmlSignatures,
    expected: &Expected<'_>,
) -> Result<Asserted, SamlError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(SamlError::TooLarge);
    }
    // No DTD is ever legitimate in SAML: refused before any parser sees it (no XXE, no
    // entity expansion), and the parser refuses them besides.
    let lower = xml.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") {
        return Err(SamlError::Doctype);
    }
    let doc = dsig::parse(xml).map_err(SamlError::Malformed)?;
    let root = doc
        .document_element()
        .filter(|r| {
            doc.element(*r)
                .is_some_and(|e| e.matches_name_ns(PROTOCOL, "Response"))
        })
        .ok_or_else(|| SamlError::Malformed("not a SAML Response".into()))?;
    status(&doc, root)?;
    if !doc
        .get_elements_by_tag_name_ns(ASSERTION, "EncryptedAssertion")
        .is_empty()
    {
        return Err(SamlError::Malformed(
            "encrypted assertions are not supported: have the IdP sign, not encrypt".into(),
        ));
    }
    let signed = match signatures.verify(xml) {
        Signatures::None => return Err(SamlError::Unsigned),
        Signatures::NoneValid(reason) => {
            tracing::info!(%reason, "no SAML signature verified");
            return Err(SamlError::BadSignature);
        }
        Signatures::Valid(signed) => signed,
    };
    let strong: Vec<_> = signed
        .iter()
        .filter(|s| allowed(s, expected.allow_sha1))
        .collect();
    if strong.is_empty() {
        return Err(SamlError::WeakAlgorithm);
    }
    // Exactly one assertion in the whole document, wherever it hides.
    if doc
        .get_elements_by_tag_name_ns(ASSERTION, "Assertion")
        .len()
        != 1
    {
        return Err(SamlError::Wrapped);
    }
    let is = |s: &dsig::SignedElement, ns: &str, name: &str| {
        s.namespace.as_deref() == Some(ns) && s.local_name == name
    };
    // The signed Response itself, or the signed Assertion where a Response holds it.
    let signed_response = strong
        .iter()
        .find(|s| s.is_document_element && is(s, PROTOCOL, "Response"));
    let signed_assertion = strong
        .iter()
        .find(|s| s.parent_is_document_element && is(s, ASSERTION, "Assertion"));
    let (source, from_response) = match (signed_response, signed_assertion) {
        (Some(response), _) => (response.canonical.as_str(), true),
        (None, Some(assertion)) => (assertion.canonical.as_str(), false),
        (None, None) => return Err(SamlError::Wrapped),
    };
    let signed_doc = dsig::parse(source).map_err(SamlError::Malformed)?;
    let signed_root = signed_doc
        .document_element()
        .ok_or_else(|| SamlError::Malformed("the signed element is empty".into()))?;
    let (adoc, assertion) = if from_response {
        let found = children(&signed_doc, signed_root, ASSERTION, "Assertion");
        let [assertion] = found.as_slice() else {
            return Err(SamlError::Wrapped);
        };
        (&signed_doc, *assertion)
    } else {
        (&signed_doc, signed_root)
    };

    // The Response: where it was sent, what it answers (signed when the Response is).
    let (rdoc, response) = if from_response {
        (&signed_doc, signed_root)
    } else {
        (&doc, root)
    };
    if let Some(destination) = rdoc.get_attribute(response, "Destination")
        && destination != expected.acs_url
    {
        return Err(SamlError::WrongDestination);
    }
    let response_in_response_to = rdoc
        .get_attribute(response, "InResponseTo")
        .map(str::to_owned);

    let issuer = first(adoc, assertion, ASSERTION, "Issuer").map(|i| text(adoc, i));
    if issuer.as_deref() != Some(expected.idp_entity_id) {
        return Err(SamlError::WrongIssuer);
    }
    let assertion_id = adoc
        .get_attribute(assertion, "ID")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| SamlError::Malformed("the assertion has no ID".into()))?
        .to_owned();
    let (now, skew) = (expected.now, expected.skew);

    // Conditions: the times, and cooper as the audience of every restriction.
    let conditions = first(adoc, assertion, ASSERTION, "Conditions")
        .ok_or_else(|| SamlError::Malformed("the assertion has no Conditions".into()))?;
    if time_of(adoc, conditions, "NotBefore")?.is_some_and(|t| now + skew < t) {
        return Err(SamlError::NotYetValid);
    }
    let not_on_or_after = time_of(adoc, conditions, "NotOnOrAfter")?
        .ok_or_else(|| SamlError::Malformed("Conditions has no NotOnOrAfter".into()))?;
    if now - skew >= not_on_or_after {
        return Err(SamlError::Expired);
    }
    let restrictions = children(adoc, conditions, ASSERTION, "AudienceRestriction");
    if restrictions.is_empty()
        || !restrictions.iter().all(|r| {
            children(adoc, *r, ASSERTION, "Audience")
                .iter()
                .any(|a| text(adoc, *a) == expected.sp_entity_id)
        })
    {
        return Err(SamlError::WrongAudience);
    }

    // The subject, confirmed as a bearer at this ACS, in time.
    let subject = first(adoc, assertion, ASSERTION, "Subject")
        .ok_or_else(|| SamlError::Malformed("the assertion has no Subject".into()))?;
    let name_id = first(adoc, subject, ASSERTION, "NameID")
        .map(|n| text(adoc, n))
        .unwrap_or_default();
    let bearers: Vec<NodeId> = children(adoc, subject, ASSERTION, "SubjectConfirmation")
        .into_iter()
        .filter(|c| adoc.get_attribute(*c, "Method") == Some(BEARER))
        .collect();
    let confirm = |c: NodeId| -> Result<(Option<String>, OffsetDateTime), SamlError> {
        let data = first(adoc, c, ASSERTION, "SubjectConfirmationData")
            .ok_or_else(|| SamlError::Malformed("no SubjectConfirmationData".into()))?;
        if adoc.get_attribute(data, "Recipient") != Some(expected.acs_url) {
            return Err(SamlError::WrongRecipient);
        }
        if time_of(adoc, data, "NotBefore")?.is_some_and(|t| now + skew < t) {
            return Err(SamlError::NotYetValid);
        }
        let until = time_of(adoc, data, "NotOnOrAfter")?.ok_or_else(|| {
            SamlError::Malformed("SubjectConfirmationData has no NotOnOrAfter".into())
        })?;
        if now - skew >= until {
            return Err(SamlError::Expired);
        }
        Ok((
            adoc.get_attribute(data, "InResponseTo").map(str::to_owned),
            until,
        ))
    };
    // The first bearer confirmation that holds; else why the first one does not.
    let mut refusal = None;
    let mut confirmed = None;
    for bearer in bearers {
        match confirm(bearer) {
            Ok(ok) => {
                confirmed = Some(ok);
                break;
            }
            Err(e) => {
                refusal.get_or_insert(e);
            }
        }
    }
    let Some((in_response_to, confirmed_until)) = confirmed else {
        return Err(
            refusal.unwrap_or_else(|| SamlError::Malformed("no bearer SubjectConfirmation".into()))
        );
    };
    if response_in_response_to.is_some() && response_in_response_to != in_response_to {
        return Err(SamlError::UnknownRequest);
    }

    let statement = first(adoc, assertion, ASSERTION, "AuthnStatement")
        .ok_or_else(|| SamlError::Malformed("the assertion has no AuthnStatement".into()))?;
    if time_of(adoc, statement, "SessionNotOnOrAfter")?.is_some_and(|t| now - skew >= t) {
        return Err(SamlError::Expired);
    }

    let mut attributes = Vec::new();
    for statement in children(adoc, assertion, ASSERTION, "AttributeStatement") {
        for attribute in children(adoc, statement, ASSERTION, "Attribute") {
            let name = adoc
                .get_attribute(attribute, "Name")
                .unwrap_or_default()
                .to_owned();
            let values = children(adoc, attribute, ASSERTION, "AttributeValue")
                .into_iter()
                .map(|v| text(adoc, v))
                .collect();
            attributes.push((name, values));
        }
    }
    Ok(Asserted {
        assertion_id,
        in_response_to,
        name_id,
        attributes,
        valid_until: not_on_or_after.min(confirmed_until),
    })
}
