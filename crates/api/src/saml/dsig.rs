//! XML Signature verification behind one small trait, so the SAML profile above it does not
//! depend on the library that checks the cryptography (bergshamra, pinned; pure Rust over
//! aws-lc-rs). What comes out is, for each signature that verifies with a configured key, the
//! element it covers as *that element's own canonical XML*: the profile reads nothing else.

use std::fmt;

use bergshamra_c14n::C14nMode;
use bergshamra_dsig::{DsigContext, VerifyResult};
use bergshamra_keys::KeysManager;
use bergshamra_xml::NodeSet;
use bergshamra_xml::uppsala::{self, Document, NodeId};

pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// Transforms an IdP may sign with: enveloped-signature and canonicalization, nothing that
/// selects a part of the element (an XPath transform would let a signature cover less than
/// the element it names).
const TRANSFORMS: [&str; 5] = [
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
];

/// One element whose enveloped signature verified.
pub struct SignedElement {
    /// The element's local name and namespace.
    pub local_name: String,
    pub namespace: Option<String>,
    /// Whether it is the document element, or a child of it.
    pub is_document_element: bool,
    pub parent_is_document_element: bool,
    /// The element alone, as exclusive canonical XML without comments: what the signature
    /// covers (with the signature element still inside it).
    pub canonical: String,
    /// The `SignatureMethod` and the `DigestMethod` algorithms, as URIs.
    pub signature_method: String,
    pub digest_method: String,
}

/// What the signatures of a document say.
pub enum Signatures {
    /// No `Signature` element anywhere.
    None,
    /// Signatures, none of which verifies with a trusted key (why, for the log).
    NoneValid(String),
    Valid(Vec<SignedElement>),
}

/// Verifies XML Signatures with a fixed set of trusted keys.
pub trait XmlSignatures: Send + Sync {
    /// The signatures of `xml` (already refused if it has a DOCTYPE).
    fn verify(&self, xml: &str) -> Signatures;
}

/// bergshamra with its SAML-hardened defaults: only the configured keys (never a key the
/// document carries), references only to the signature's parent or ancestors (no signature
/// wrapping), every reference digested locally.
pub struct Bergshamra {
    /// The certificates' public keys, loaded once at start-up.
    keys: Vec<bergshamra_keys::Key>,
}

impl fmt::Debug for Bergshamra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bergshamra({} keys)", self.keys.len())
    }
}

impl Bergshamra {
    /// Keys from PEM certificates; each must load.
    pub fn new(certificates: &[String]) -> Result<Self, String> {
        if certificates.is_empty() {
            return Err(
                "name at least one signing certificate (unsigned is never accepted)".into(),
            );
        }
        let keys = certificates
            .iter()
            .enumerate()
            .map(|(i, pem)| {
                bergshamra_keys::loader::load_x509_cert_pem(pem.as_bytes())
                    .map_err(|e| format!("certificate {i} is not a PEM X.509 certificate: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    fn context(&self) -> DsigContext {
        let mut keys = KeysManager::new();
        for key in &self.keys {
            keys.add_key(key.clone());
        }
        let mut ctx = DsigContext::new(keys);
        ctx.trusted_keys_only = true;
        ctx.strict_verification = true;
        ctx.require_reference_digests = true;
        // The IdP's certificate is a key it publishes in its metadata, not a chain to check
        // (IdPs sign with self-signed certificates, rotated by configuring the next one).
        ctx.skip_time_checks = true;
        ctx
    }
}

pub fn parse(xml: &str) -> Result<Document<'_>, String> {
    uppsala::Parser::new()
        .with_forbid_dtd(true)
        .with_forbid_entities(true)
        .with_max_depth(64)
        .parse(xml)
        .map_err(|e| e.to_string())
}

fn child(doc: &Document<'_>, parent: NodeId, ns: &str, name: &str) -> Option<NodeId> {
    doc.first_child_element_by_name_ns(parent, ns, name)
}

fn algorithm(doc: &Document<'_>, node: Option<NodeId>) -> String {
    node.and_then(|n| doc.get_attribute(n, "Algorithm"))
        .unwrap_or_default()
        .to_owned()
}

impl Bergshamra {
    /// The element `signature` envelops, if it verified as cooper requires: one reference,
    /// to its parent by that parent's ID, with only the transforms above.
    fn signed_element(
        doc: &Document<'_>,
        signature: NodeId,
        references: &[bergshamra_dsig::VerifiedReference],
    ) -> Result<SignedElement, String> {
        let [reference] = references else {
            return Err("a signature must have exactly one reference".into());
        };
        let target = reference
            .resolved_node
            .filter(|_| reference.digest_verified)
            .ok_or("the reference was not digested here")?;
        if doc.parent(signature) != Some(target) {
            return Err("the signature does not envelop the element it signs".into());
        }
        let id = doc.get_attribute(target, "ID").unwrap_or_default();
        if id.is_empty() || reference.uri != format!("#{id}") {
            return Err("the reference does not name its element by ID".into());
        }
        let signed_info = child(doc, signature, DSIG, "SignedInfo").ok_or("no SignedInfo")?;
        let reference_node = child(doc, signed_info, DSIG, "Reference").ok_or("no Reference")?;
        if let Some(transforms) = child(doc, reference_node, DSIG, "Transforms") {
            for t in doc.child_elements_by_name_ns(transforms, DSIG, "Transform") {
                let uri = algorithm(doc, Some(t));
                if !TRANSFORMS.contains(&uri.as_str()) {
                    return Err(format!("transform {uri} is not accepted"));
                }
            }
        }
        let element = doc
            .element(target)
            .ok_or("the reference is not an element")?;
        let root = doc.document_element();
        let canonical = bergshamra_c14n::canonicalize_doc::<&str>(
            doc,
            C14nMode::Exclusive,
            Some(&NodeSet::tree_without_comments(target, doc)),
            &[],
        )
        .map_err(|e| e.to_string())?;
        Ok(SignedElement {
            local_name: element.name.local_name.to_string(),
            namespace: element.name.namespace_uri.as_deref().map(str::to_owned),
            is_document_element: root == Some(target),
            parent_is_document_element: root.is_some() && doc.parent(target) == root,
            canonical: String::from_utf8(canonical).map_err(|e| e.to_string())?,
            signature_method: algorithm(doc, child(doc, signed_info, DSIG, "SignatureMethod")),
            digest_method: algorithm(doc, child(doc, reference_node, DSIG, "DigestMethod")),
        })
    }
}

impl XmlSignatures for Bergshamra {
    fn verify(&self, xml: &str) -> Signatures {
        let doc = match parse(xml) {
            Ok(doc) => doc,
            Err(e) => return Signatures::NoneValid(format!("not well-formed: {e}")),
        };
        if doc
            .get_elements_by_tag_name_ns(DSIG, "Signature")
            .is_empty()
        {
            return Signatures::None;
        }
        let ctx = self.context();
        let results =
            match bergshamra_dsig::verify::verify_all_document_with_source(&ctx, &doc, Some(xml)) {
                Ok(results) => results,
                Err(e) => return Signatures::NoneValid(e.to_string()),
            };
        let mut valid = Vec::new();
        let mut reasons = Vec::new();
        for result in results {
            match result {
                VerifyResult::Valid {
                    signature_node,
                    references,
                    ..
                } => match Self::signed_element(&doc, signature_node, &references) {
                    Ok(element) => valid.push(element),
                    Err(reason) => reasons.push(reason),
                },
                VerifyResult::Invalid { reason } => reasons.push(reason),
            }
        }
        if valid.is_empty() {
            Signatures::NoneValid(reasons.join("; "))
        } else {
            Signatures::Valid(valid)
        }
    }
}
