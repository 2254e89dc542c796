"""Open a local HTML file in headless Chromium (Debian `chromium`) over the DevTools protocol.

Returns what a reader's browser would have seen: JavaScript exceptions and console/log errors, every
network request, how many images there are and how many failed to render, and a PNG screenshot.
The browser runs with no network: every host name resolves to nothing.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import websocket  # websocket-client, a dependency of the kubernetes client

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
_IMAGES = (
    "JSON.stringify({total: document.images.length, broken: Array.from(document.images)"
    ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 60))})"
)


def chromium() -> str | None:
    """The Chromium executable on PATH, if any."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


class _Session:
    def __init__(self, url: str):
        self.socket = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(self.socket.recv()))


def render(
    page: Path | str, screenshot: Path, width: int = 1280, height: int = 2400, wait_for_text: str | None = None
) -> dict:
    """Loads `page` (a file, or an http://127.0.0.1 URL), returns {'errors', 'requests', 'images',
    'broken_images', 'text'} and writes `screenshot`.

    `wait_for_text`: wait (up to 120 s) until the page's text holds it, for pages that draw after loading.
    """
    executable = chromium()
    if executable is None:
        raise FileNotFoundError("no Chromium on PATH (Debian: apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    process = subprocess.Popen(
        [executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--no-first-run",
         "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        endpoint = None
        deadline = time.monotonic() + 60
        while endpoint is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"Chromium exited with {process.returncode}")
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            endpoint = match.group(1) if match else None
        if endpoint is None:
            raise TimeoutError("Chromium did not open its DevTools endpoint")
        browser = _Session(endpoint)
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        url = page if isinstance(page, str) else page.resolve().as_uri()
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired")
        text = ""
        deadline = time.monotonic() + 120
        while wait_for_text is not None:
            result = browser.send(
                "Runtime.evaluate", {"expression": "document.body.innerText", "returnByValue": True}, session=session
            )
            text = result["result"].get("value", "")
            if wait_for_text in text:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{wait_for_text!r} did not appear within 120 s; the page says: {text[:500]!r}")
            time.sleep(0.5)
        images = json.loads(
            browser.send("Runtime.evaluate", {"expression": _IMAGES, "returnByValue": True}, session=session)["result"][
                "value"
            ]
        )
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        errors, requests = [], []
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(str(params.get("args")))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
            elif method == "Network.requestWillBeSent":
                requests.append(params["request"]["url"][:100])
        browser.socket.close()
        return {
            "errors": errors,
            "requests": requests,
            "images": images["total"],
            "broken_images": images["broken"],
            "text": text,
        }
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
