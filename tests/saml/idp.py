"""A real SAML 2.0 identity provider (pysaml2's Server, signing with Debian's xmlsec1) for
cooper's end-to-end tests. Makes a key pair of its own, listens on 127.0.0.1 (a free port),
prints one JSON line {"entity_id", "sso_url", "certificate"} and serves until stdin closes.

GET /sso?SAMLRequest=...&RelayState=...[&login=NAME]  the HTTP-Redirect binding: answers the
    AuthnRequest with an auto-posting form (HTTP-POST binding) carrying a signed assertion for
    NAME (or --user), in --groups.
GET /idp-initiated?login=NAME  an unsolicited response (no InResponseTo).
GET /metadata  the IdP's metadata.

Usage: idp.py --sp-entity-id URL --acs-url URL [--user NAME] [--groups a,b] [--sign-response]
"""
import warnings

warnings.filterwarnings("ignore")  # pysaml2 imports a cipher mode cryptography has deprecated

import argparse  # noqa: E402
import base64
import datetime
import html
import json
import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def key_pair(directory):
    key = rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cooper test SAML IdP")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = os.path.join(directory, "idp.key"), os.path.join(directory, "idp.crt")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    with open(cert_path, "wb") as f:
        f.write(pem)
    return key_path, cert_path, pem.decode()


def sp_metadata(path, entity_id, acs):
    with open(path, "w") as f:
        f.write(
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'entityID="{entity_id}"><md:SPSSODescriptor AuthnRequestsSigned="false" '
            'WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'<md:NameIDFormat>{NAMEID_FORMAT_EMAILADDRESS}</md:NameIDFormat>'
            f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{acs}" index="0"/>'
            '</md:SPSSODescriptor></md:EntityDescriptor>')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sp-entity-id", required=True)
    parser.add_argument("--acs-url", required=True)
    parser.add_argument("--user", default="alice@example.com")
    parser.add_argument("--groups", default="")
    parser.add_argument("--sign-response", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    groups = [g for g in args.groups.split(",") if g]

    work = tempfile.mkdtemp(prefix="cooper-saml-idp-")
    key_path, cert_path, pem = key_pair(work)
    metadata_path = os.path.join(work, "sp.xml")
    sp_metadata(metadata_path, args.sp_entity_id, args.acs_url)
    # The attribute names as they are (basic name format): pysaml2's own maps would send
    # `email` as urn:mace:dir:attribute-def:email.
    with open(os.path.join(work, "cooper_saml_attribute_map.py"), "w") as f:
        names = {"email": "email", "groups": "groups"}
        f.write(f"MAP = {{'identifier': {NAME_FORMAT_BASIC!r}, 'fro': {names!r}, 'to': {names!r}}}\n")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    config = IdPConfig()
    config.load({
        "entityid": f"{base}/metadata",
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(f"{base}/sso", BINDING_HTTP_REDIRECT)]},
            "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                   "name_form": NAME_FORMAT_BASIC}},
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            "want_authn_requests_signed": False,
        }},
        "key_file": key_path,
        "cert_file": cert_path,
        "metadata": {"local": [metadata_path]},
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "signing_algorithm": RSA_SHA256,
        "digest_algorithm": SHA256,
        "attribute_map_dir": work,
    })
    server = Server(config=config)
    lock = threading.Lock()

    def respond(login, in_response_to, destination, relay_state):
        identity = {"groups": groups, "email": [login]}
        with lock:
            response = server.create_authn_response(
                identity,
                in_response_to=in_response_to,
                destination=destination,
                sp_entity_id=args.sp_entity_id,
                userid=login,
                name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=login),
                authn={"class_ref": PASSWORD, "authn_auth": f"{base}/metadata"},
                sign_assertion=True,
                sign_response=args.sign_response,
                sign_alg=RSA_SHA256,
                digest_alg=SHA256,
            )
        return (
            "<!DOCTYPE html><html><head><title>SAML</title></head>"
            '<body onload="document.forms[0].submit()">'
            f'<form method="post" action="{html.escape(destination)}">'
            '<input type="hidden" name="SAMLResponse" value="'
            f'{base64.b64encode(str(response).encode()).decode()}"/>'
            f'<input type="hidden" name="RelayState" value="{html.escape(relay_state or "")}"/>'
            '<noscript><input type="submit" value="Continue"/></noscript></form></body></html>'
        )

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            if args.verbose:
                sys.stderr.write("idp: " + (a[0] % a[1:]) + "\n")

        def answer(self, status, body, kind="text/html"):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            login = query.get("login", args.user)
            try:
                if url.path == "/sso":
                    with lock:
                        request = server.parse_authn_request(query["SAMLRequest"],
                                                             BINDING_HTTP_REDIRECT).message
                    acs = request.assertion_consumer_service_url or args.acs_url
                    self.answer(200, respond(login, request.id, acs, query.get("RelayState")))
                elif url.path == "/idp-initiated":
                    self.answer(200, respond(login, None, args.acs_url, ""))
                elif url.path == "/metadata":
                    self.answer(200, create_metadata_string(None, config=config).decode(),
                                "application/samlmetadata+xml")
                else:
                    self.answer(404, "no such page")
            except Exception as e:  # the test reads the status; the message goes to stderr
                sys.stderr.write(f"idp: {e!r}\n")
                self.answer(400, f"refused: {e}")

    httpd.RequestHandlerClass = Handler
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(json.dumps({"entity_id": f"{base}/metadata", "sso_url": f"{base}/sso", "certificate": pem}),
          flush=True)
    sys.stdin.read()
    httpd.shutdown()


if __name__ == "__main__":
    main()
