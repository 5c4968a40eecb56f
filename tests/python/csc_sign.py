"""Signs a PDF through Tuaton's CSC API v2.0 with pyHanko's CSC signer, as an
agency's back end would.

    csc_sign.py SERVICE_URL SERVICE_TOKEN CREDENTIAL_ID IN.pdf OUT.pdf

pyHanko reads the credential (``credentials/info``) with the agency's
``service`` token, prepares the PAdES signature and computes the hash to be
signed. The person must confirm that hash, which happens outside this script:
it writes ``{"hashes": [...]}`` as one line to stdout and reads one line
``{"token": ...}`` from stdin, the access token the agency received after the
person confirmed the hash with a passkey. With that token it takes a SAD
(``credentials/authorize``), pyHanko calls ``signatures/signHash`` and adds a
RFC 3161 timestamp from SERVICE_URL/tsa. It ends with ``{"signed": OUT.pdf}``
on stdout; a failure is a message on stderr and exit status 1.
"""

import asyncio
import json
import sys

import aiohttp
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.csc_signer import (
    CSCAuthorizationManager,
    CSCServiceSessionInfo,
    CSCSigner,
    fetch_certs_in_csc_credential,
)
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper


class PersonConfirms(CSCAuthorizationManager):
    """Asks the person (through the test driving this script) to confirm the
    hashes, then takes a SAD with the token the confirmation gave."""

    def __init__(self, session_info, credential_info, session):
        super().__init__(session_info, credential_info)
        self.session = session
        self.token = None

    async def authorize_signature(self, hash_b64s):
        print(json.dumps({"hashes": hash_b64s}), flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        self.token = json.loads(line)["token"]
        request = self.format_csc_auth_request(hash_b64s=hash_b64s)
        url = self.csc_session_info.endpoint_url("credentials/authorize")
        async with self.session.post(url, headers=self.auth_headers, json=request) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"credentials/authorize answered {response.status}: {body}")
        return self.parse_csc_auth_response(body)

    @property
    def auth_headers(self):
        if self.token is None:
            return self.csc_session_info.auth_headers
        return {"Authorization": f"Bearer {self.token}"}


async def main(service_url, service_token, credential_id, source, target):
    info = CSCServiceSessionInfo(
        service_url=service_url,
        credential_id=credential_id,
        oauth_token=service_token,
        api_ver="v2",
    )
    async with aiohttp.ClientSession() as session:
        credential = await fetch_certs_in_csc_credential(session, info)
        if not credential.hash_pinning_required:
            raise RuntimeError("the credential should say SCAL 2 (hashes bound to the SAD)")
        manager = PersonConfirms(info, credential, session)
        signer = CSCSigner(session, manager, batch_size=1)
        meta = signers.PdfSignatureMetadata(
            field_name="AgencySignature",
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
        )
        timestamper = HTTPTimeStamper(f"{service_url}/tsa", session=session)
        with open(source, "rb") as inf:
            writer = IncrementalPdfFileWriter(inf)
            with open(target, "wb") as outf:
                await signers.async_sign_pdf(
                    writer, meta, signer=signer, timestamper=timestamper, output=outf
                )
    print(json.dumps({"signed": target}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    try:
        asyncio.run(main(*sys.argv[1:]))
    except Exception as e:  # reported to the test, which fails on it
        print(f"csc_sign.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
