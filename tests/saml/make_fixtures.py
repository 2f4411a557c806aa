"""Writes the signed SAML fixtures in tests/saml/fixtures (the unit tests in
crates/api/src/saml/tests.rs read them at a fixed time). Keys are test keys, made once and
committed; the fixtures are signed with Debian's xmlsec1. Run: .venv/bin/python tests/saml/make_fixtures.py
"""
import datetime
import os
import re
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
SP = "https://cooper.example.com/v1/saml/corp/metadata"
ACS = "https://cooper.example.com/v1/saml/corp/acs"
IDP = "https://idp.example.com/saml"
REQUEST = "_0123456789abcdef0123456789abcdef"
INSTANT = "2026-01-01T12:00:00Z"
NOT_BEFORE = "2026-01-01T11:59:00Z"
NOT_AFTER = "2026-01-01T12:05:00Z"
ROLE = "arn:aws:iam::123456789012:role/Engineers,arn:aws:iam::123456789012:saml-provider/Corp"

NS = ('xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
      'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"')
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"


def key_pair(name, kind):
    key_path, crt_path = os.path.join(HERE, name + ".key"), os.path.join(HERE, name + ".crt")
    if os.path.exists(key_path) and os.path.exists(crt_path):
        return key_path, crt_path
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cooper test IdP ({name})")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2025, 1, 1))
            .not_valid_after(datetime.datetime(2045, 1, 1))
            .sign(key, hashes.SHA256()))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, crt_path


def template(ref, sig=RSA_SHA256, digest=SHA256):
    return ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
            '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
            f'<ds:SignatureMethod Algorithm="{sig}"/><ds:Reference URI="#{ref}"><ds:Transforms>'
            '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
            '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
            f'<ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo>'
            '<ds:SignatureValue/><ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data>'
            '</ds:KeyInfo></ds:Signature>')


def assertion(aid, name_id="alice@example.com", audience=SP, recipient=ACS, groups=True,
              signature=""):
    group_attr = ('<saml:Attribute Name="groups"><saml:AttributeValue>eng</saml:AttributeValue>'
                  '<saml:AttributeValue>ops</saml:AttributeValue></saml:Attribute>') if groups else ""
    return (f'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{aid}" '
            f'Version="2.0" IssueInstant="{INSTANT}"><saml:Issuer>{IDP}</saml:Issuer>{signature}'
            '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
            f'{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml:SubjectConfirmationData InResponseTo="{REQUEST}" NotOnOrAfter="{NOT_AFTER}" '
            f'Recipient="{recipient}"/></saml:SubjectConfirmation></saml:Subject>'
            f'<saml:Conditions NotBefore="{NOT_BEFORE}" NotOnOrAfter="{NOT_AFTER}"><saml:AudienceRestriction>'
            f'<saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>'
            f'<saml:AuthnStatement AuthnInstant="{INSTANT}"><saml:AuthnContext><saml:AuthnContextClassRef>'
            'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>'
            '</saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>'
            f'{group_attr}<saml:Attribute Name="email"><saml:AttributeValue>{name_id}</saml:AttributeValue>'
            '</saml:Attribute><saml:Attribute Name="https://aws.amazon.com/SAML/Attributes/Role">'
            f'<saml:AttributeValue>{ROLE}</saml:AttributeValue></saml:Attribute>'
            '</saml:AttributeStatement></saml:Assertion>')


SUCCESS = ('<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>'
           '</samlp:Status>')


def response(rid, body, destination=ACS, signature="", status=SUCCESS, extensions=""):
    return (f'<samlp:Response {NS} ID="{rid}" Version="2.0" IssueInstant="{INSTANT}" '
            f'Destination="{destination}" InResponseTo="{REQUEST}"><saml:Issuer>{IDP}</saml:Issuer>'
            f'{signature}{extensions}{status}{body}</samlp:Response>')


def sign(xml, key):
    key_path, crt_path = key
    with tempfile.TemporaryDirectory() as tmp:
        source, out = os.path.join(tmp, "in.xml"), os.path.join(tmp, "out.xml")
        with open(source, "w") as f:
            f.write(xml)
        subprocess.run(["xmlsec1", "--sign", "--privkey-pem", f"{key_path},{crt_path}",
                        "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                        "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
                        "--output", out, source], check=True)
        with open(out) as f:
            text = f.read()
    # The declaration xmlsec1 adds is dropped: the fixtures are embedded in other documents.
    if text.startswith("<?xml"):
        text = text.split("?>", 1)[1].lstrip("\n")
    return text.rstrip("\n")


def verifies(xml, crt):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "v.xml")
        with open(path, "w") as f:
            f.write(xml)
        done = subprocess.run(["xmlsec1", "--verify", "--pubkey-cert-pem", crt,
                               "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                               "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response", path],
                              capture_output=True)
        return done.returncode == 0


def unsigned_part(xml):
    return re.sub(r"<ds:SignatureValue>[^<]*</ds:SignatureValue>", "", xml)


def signed_assertion(name, key, **kw):
    aid = f"_assert-{name}"
    sig, digest = kw.pop("alg", (RSA_SHA256, SHA256))
    return sign(assertion(aid, signature=template(aid, sig, digest), **kw), key)


def main():
    os.makedirs(HERE, exist_ok=True)
    idp, other, ecdsa = key_pair("idp", "rsa"), key_pair("other", "rsa"), key_pair("ec", "ec")
    out = {}
    out["assertion-signed"] = response("_resp-assertion-signed", signed_assertion("assertion-signed", idp))
    rid = "_resp-response-signed"
    out["response-signed"] = sign(response(rid, assertion("_assert-response-signed"),
                                           signature=template(rid)), idp)
    rid = "_resp-both-signed"
    out["both-signed"] = sign(response(rid, signed_assertion("both-signed", idp),
                                       signature=template(rid)), idp)
    out["ecdsa"] = response("_resp-ecdsa", signed_assertion("ecdsa", ecdsa, alg=(ECDSA_SHA256, SHA256)))
    out["unsigned"] = response("_resp-unsigned", assertion("_assert-unsigned"))
    out["other-key"] = response("_resp-other-key", signed_assertion("other-key", other))
    good = signed_assertion("wrap-sibling", idp)
    evil = assertion("_evil", name_id="admin@example.com")
    out["wrap-sibling"] = response("_resp-wrap-sibling", evil + good)
    good = signed_assertion("wrap-parent", idp)
    out["wrap-parent"] = response("_resp-wrap-parent", evil,
                                  extensions=f"<samlp:Extensions>{good}</samlp:Extensions>")
    signed_response = out["response-signed"]
    out["wrap-response"] = response("_evil-resp", evil,
                                    extensions=f"<samlp:Extensions>{signed_response}</samlp:Extensions>")
    out["sha1"] = response("_resp-sha1", signed_assertion("sha1", idp, alg=(RSA_SHA1, SHA1)))
    doc = response("_resp-doctype", signed_assertion("doctype", idp)).replace(
        "alice@example.com</saml:NameID>", "&who;</saml:NameID>", 1)
    out["doctype"] = '<!DOCTYPE samlp:Response [<!ENTITY who "admin@example.com">]>\n' + doc
    commented = signed_assertion("comment-nameid", idp, name_id="admin@evil.example")
    commented = commented.replace(">admin@evil.example</saml:NameID>", ">admin<!---->@evil.example</saml:NameID>", 1)
    out["comment-nameid"] = response("_resp-comment-nameid", commented)
    out["wrong-audience"] = response("_resp-wrong-audience", signed_assertion(
        "wrong-audience", idp, audience="https://someone-else.example.com/saml"))
    out["wrong-recipient"] = response("_resp-wrong-recipient", signed_assertion(
        "wrong-recipient", idp, recipient="https://evil.example.com/acs"))
    rid = "_resp-wrong-destination"
    out["wrong-destination"] = sign(response(rid, assertion("_assert-wrong-destination"),
                                             destination="https://evil.example.com/acs",
                                             signature=template(rid)), idp)
    failed = ('<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder">'
              '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"/></samlp:StatusCode>'
              '<samlp:StatusMessage>bad password</samlp:StatusMessage></samlp:Status>')
    out["status-failed"] = response("_resp-status-failed", "", status=failed)
    out["tampered"] = response("_resp-tampered", signed_assertion("tampered", idp).replace(
        ">alice@example.com</saml:NameID>", ">admin@example.com</saml:NameID>", 1))
    out["role-attribute"] = response("_resp-role-attribute",
                                     signed_assertion("role-attribute", idp, groups=False))
    for name, xml in out.items():
        path = os.path.join(HERE, name + ".xml")
        # ECDSA signatures are randomised: a fixture that differs only in its SignatureValues
        # is left as it is, so that a rerun changes nothing.
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
            if unsigned_part(old) == unsigned_part(xml + "\n") and verifies(old, ecdsa[1] if name == "ecdsa" else idp[1]):
                out[name] = old.rstrip("\n")
                continue
        with open(path, "w") as f:
            f.write(xml + "\n")
    # What xmlsec1 itself says of each: the forgeries' signatures are (mostly) valid XML-DSig,
    # which is the point: it is the SAML profile that must refuse them.
    expect = {"unsigned": False, "other-key": False, "tampered": False, "doctype": None,
              "status-failed": False}
    for name, xml in out.items():
        crt = ecdsa[1] if name == "ecdsa" else idp[1]
        ok = verifies(xml, crt)
        want = expect.get(name, True)
        if want is not None and ok != want:
            sys.exit(f"{name}: xmlsec1 --verify says {ok}, expected {want}")
    print(f"wrote {len(out)} fixtures to {HERE}")


if __name__ == "__main__":
    main()
