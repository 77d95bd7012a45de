"""The pyghmi internals ctys.pm patches or relies on, pinned to what they are in pyghmi 1.6.19.

requirements.txt admits pyghmi >=1.6.19,<1.7; each test here fails, saying what
to re-check, when pyghmi changes one of them (docs/notes.md, "The collection").
The source is read from pyghmi's file (not from the live objects, which
``_ipmi.session`` and ``_ipmi.ciphers`` replace in this process), and each
function's text is compared by its SHA-256.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
from importlib import metadata

import pytest

pyghmi_session = pytest.importorskip("pyghmi.ipmi.private.session")

SOURCE = inspect.getsource(pyghmi_session)
TREE = ast.parse(SOURCE)

# (class or None, function) -> (arguments, sha256 of its source text in pyghmi 1.6.19 (first 16 digits), what to re-check)
PINNED = {
    (None, "_io_wait"): (
        ["timeout", "myaddr", "evq"], "cd0469dae6554fec",
        "_ipmi.session.wake_promptly replaces it: check prompt_wait still registers (ioqueue entries (deadline, event, myaddr)), "
        "wakes the I/O thread the same way (iosockets[0], myself, selectdeadline) and looks at sessionqueue / bmc_handlers pktqueue",
    ),
    (None, "define_worker"): (
        [], None,
        "the I/O thread that serves _io_wait: check it still pops (deadline, event, myaddr) from ioqueue and sets the event",
    ),
    ("Session", "_getmaxtimeout"): (
        ["self"], "c00359a81278b4f7",
        "_ipmi.session._bound_waits caps it per session: check pyghmi still asks it how long to retransmit",
    ),
    ("Session", "_open_rmcpplus_request"): (
        ["self"], "641a80748b467720",
        "_ipmi.ciphers wraps it: check it still proposes suite 17 for attemptedhash 256 and suite 3 for 1, sets currhashlen "
        "16/12 and proposes no other suite (cipher_suite offers auto, 3 and 17 only because of this)",
    ),
    ("Session", "_got_rmcp_response"): (
        ["self", "data"], "2023f33431047fd5",
        "_ipmi.ciphers relies on its fall-back from 17 to 3 (attemptedhash 256 -> 1) and _ipmi.errors on its "
        "onlogon({'error': rmcp_codes[status]}) for a refused open-session request; _ipmi.session.harden drops a "
        "response naming another session (bytes 4-8) before it",
    ),
    ("Session", "__new__"): (
        ["cls", "bmc", "userid", "password", "port", "kg", "onlogon", "privlevel", "keepalive"], "1ee616952a358168",
        "_ipmi.session._purge removes a refused login from initting_sessions (keyed by bmc, userid, password, port, kg) "
        "and bmc_handlers: check a new Session still reuses a listed one",
    ),
    ("Session", "_initsession"): (
        ["self"], "d3867d74acbdc05b",
        "_ipmi.session.harden gives each session its own random localsid after it: check pyghmi still sets one "
        "fixed localsid there and compares it in _got_rmcp_response, _got_rakp2 and _got_rakp4 and in session packets",
    ),
    ("Session", "_got_rakp2"): (
        ["self", "data"], "bca7810481cfb958",
        "_ipmi.session.harden drops a RAKP2 naming another session (bytes 4-8 of the payload) before it: check an "
        "error status still fails the login before the session id is compared",
    ),
    ("Session", "_got_rakp4"): (
        ["self", "data"], "503524e9624c5a40",
        "_ipmi.session.harden drops a RAKP4 naming another session before it, and relies on it calling "
        "_req_priv_level when the login is established",
    ),
    ("Session", "_req_priv_level"): (
        ["self"], "0b2ed86787e41913",
        "_ipmi.session.harden replaces it by an asynchronous request: check what it sets (logged, logoutexpiry, "
        "maxtimeout, logontries, keepalive_sessions) and how it retries with privilege 3",
    ),
    ("Session", "raw_command"): (
        ["self", "netfn", "command", "bridge_request", "data", "retry", "delay_xmit", "timeout", "callback", "rslun"], "024c828d35b9a178",
        "_ipmi.session.send uses callback= (returns after sending; the callback gets the response; incommand is left "
        "for the caller to clear) and avoids its wait for a relogin (logging and not logged)",
    ),
    ("Session", "onlogon"): (
        ["self", "parameter"], "26226124505ee58a",
        "_ipmi.session.harden restores a command's callback before it: check it still resends onlogpayload after a relogin",
    ),
    ("Session", "_handle_ipmi_packet"): (
        ["self", "data", "sockaddr", "qent"], "d9995c3bcdafb0b6",
        "_ipmi.session.harden drops a packet its parsers raise on (IndexError, struct.error, ...): check every received "
        "packet still goes through it",
    ),
    ("Session", "_mark_broken"): (
        ["self", "error"], "4630a29a692cc7cb",
        "_ipmi.session._forget marks a failed login broken (broken, logged) to stop pyghmi's own login retries",
    ),
}


def _function(cls, name):
    scope = TREE.body
    if cls is not None:
        scope = next(node for node in TREE.body if isinstance(node, ast.ClassDef) and node.name == cls).body
    return next((node for node in scope if isinstance(node, ast.FunctionDef) and node.name == name), None)


def test_pyghmi_is_a_1_6_release():
    version = metadata.version("pyghmi")
    assert version.startswith("1.6."), (
        f"pyghmi {version} is installed; ctys.pm is checked against 1.6.19 (requirements.txt: <1.7): re-check every test in this file"
    )


@pytest.mark.parametrize("where", list(PINNED), ids=lambda where: ".".join(part for part in where if part))
def test_a_patched_or_relied_on_pyghmi_function_is_unchanged(where):
    cls, name = where
    arguments, digest, recheck = PINNED[where]
    node = _function(cls, name)
    label = f"pyghmi.ipmi.private.session.{cls + '.' if cls else ''}{name}"
    assert node is not None, f"{label} is gone; re-check: {recheck}"
    assert [a.arg for a in node.args.args] == arguments, f"{label} changed its arguments; re-check: {recheck}"
    if digest is not None:
        text = ast.get_source_segment(SOURCE, node) or ""
        assert hashlib.sha256(text.encode()).hexdigest()[:16] == digest, f"{label} changed; re-check: {recheck}"


def test_the_io_threads_state_is_where_prompt_wait_looks():
    for name in ("ioqueue", "sessionqueue", "iosockets", "selectdeadline", "myself", "_monotonic_time"):
        assert hasattr(pyghmi_session, name), f"pyghmi.ipmi.private.session.{name} is gone; re-check _ipmi.session.wake_promptly"
    for name in ("bmc_handlers", "initting_sessions"):
        assert isinstance(getattr(pyghmi_session.Session, name, None), dict), (
            f"Session.{name} is no longer a class-level dict; re-check _ipmi.session._purge and _answer_queued"
        )


def test_the_login_failure_texts_errors_looks_up_are_pyghmis():
    """_ipmi.errors classifies a refused login by looking pyghmi's text up exactly; the texts must still be pyghmi's."""
    from pyghmi.ipmi.private import constants

    from ansible_collections.ctys.pm.plugins.module_utils._ipmi import errors

    for code in errors.RMCP_OUT_OF_SESSIONS + errors.RMCP_BAD_ROLE + errors.RMCP_CIPHER + (errors.RMCP_UNKNOWN_USER,):
        assert code in constants.rmcp_codes, f"pyghmi's rmcp_codes lost status {code:#x}; re-check _ipmi.errors.login_error"
        assert errors.rmcp_status_of(constants.rmcp_codes[code]) in (code, 0x06), code  # 6 and 7 share pyghmi's text
    for code in (errors.CC_NODE_BUSY, errors.CC_PROCESSING_TIMEOUT, errors.CC_NOT_PRESENT, errors.CC_PRIVILEGE):
        assert errors.completion_code_of(constants.ipmi_completion_codes[code]) == code
    for literal in [errors.PYGHMI_BAD_PASSWORD, errors.PYGHMI_BAD_KG, errors.PYGHMI_SESSION_LOST, "'timeout'"] + [
        suffix.strip() for suffix in errors.RMCP_SUFFIXES + errors.PYGHMI_LOGIN_SUFFIXES
    ]:
        assert literal in SOURCE, f"pyghmi no longer says {literal!r}; re-check _ipmi.errors (it is looked up exactly)"


def test_the_suite_proposals_are_the_two_ciphers_offers():
    """pyghmi proposes suite 17 (auth 3, integrity 4) or 3 (auth 1, integrity 1), both with AES: nothing else, no suite 0."""
    from ansible_collections.ctys.pm.plugins.module_utils._ipmi import ciphers

    text = ast.get_source_segment(SOURCE, _function("Session", "_open_rmcpplus_request")) or ""
    assert "0, 0, 0, 8, 3, 0, 0, 0" in text and "1, 0, 0, 8, 4, 0, 0, 0" in text  # suite 17
    assert "0, 0, 0, 8, 1, 0, 0, 0" in text and "1, 0, 0, 8, 1, 0, 0, 0" in text  # suite 3
    assert text.count("2, 0, 0, 8, 1, 0, 0, 0") == 2  # AES in both; a proposal without it (suite 0..2) would be new
    assert ciphers.SUITES == ("auto", "3", "17") and ciphers.PYGHMI_HASH == {17: 256, 3: 1}
