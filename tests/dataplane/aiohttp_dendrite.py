#!/usr/bin/env python3
"""Talk to the bx axon the way the bittensor SDK's dendrite does.

Requests go through aiohttp with `json=` (plain json.dumps: ", " separators,
ensure_ascii) and the bt headers as given; answers are read as the SDK reads
them: `await response.json()` (needs a JSON content type), the HTTP status,
`bt_header_axon_*` headers cast to int/float. One ClientSession, so requests
reuse keep-alive connections. Usage: aiohttp_dendrite.py PORT SPEC.json
"""
import asyncio
import json
import sys

try:
    import aiohttp
except ImportError:
    print("SKIP: python3-aiohttp is not installed")
    sys.exit(77)


async def run(port, specs):
    failed = 0
    async with aiohttp.ClientSession() as session:
        for i, sp in enumerate(specs):
            url = f"http://127.0.0.1:{port}/{sp['synapse']}"
            timeout = aiohttp.ClientTimeout(total=12.0)
            try:
                async with session.post(url, headers=sp["headers"], json=sp["body"],
                                        timeout=timeout) as r:
                    js = await r.json()
                    want = sp["status"]
                    assert r.status == want, (r.status, js)
                    assert r.headers["bt_header_axon_status_code"] == str(want), r.headers
                    if want == 200:
                        assert js["name"] == sp["synapse"], js
                        assert js["axon"]["status_code"] == 200, js
                        assert js["axon"]["status_message"] == "Success", js
                        float(js["axon"]["process_time"])
                        float(r.headers["bt_header_axon_process_time"])
                        int(r.headers["bt_header_axon_nonce"])
                        int(r.headers["bt_header_dendrite_nonce"])
                        assert r.headers["bt_header_axon_signature"].startswith("0x")
                        assert r.headers["bt_header_axon_body_signature"].startswith("0x")
                        for k in sp["body"]:
                            assert k in js, k
                        assert js["dendrite"]["nonce"] == sp["body"]["dendrite"]["nonce"]
                    else:
                        assert js["message"].startswith(sp["message"]), js
                        assert r.headers["bt_header_axon_status_message"] == js["message"]
            except Exception as e:  # report and go on
                failed += 1
                print(f"request {i} ({sp['synapse']}): {type(e).__name__}: {e}")
    print(f"{len(specs) - failed} passed, {failed} failed")
    return failed


def main():
    port = int(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        specs = json.load(f)
    sys.exit(1 if asyncio.run(run(port, specs)) else 0)


if __name__ == "__main__":
    main()
