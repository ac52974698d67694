"""Throwaway certificates for test_net.py, made with Debian's openssl CLI:
a CA, a server certificate it signs for localhost and 127.0.0.1, one it
signs for another name only, and a self-signed one (not by the CA). Also a
threaded HTTPS server on 127.0.0.1 that serves a handler class with one of
them. Nothing here leaves the machine."""

import http.server
import os
import shutil
import ssl
import subprocess
import threading

import harness


def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        harness.fail("openssl %s failed (exit %d):\n%s" % (" ".join(args), p.returncode,
                                                           p.stderr.decode("utf-8", "replace")))


# P-256 keys: made in milliseconds, where RSA takes long enough to show.
_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


class Certs:
    """In `directory`: ca.pem (the CA certificate), good.pem/good.key
    (signed by the CA for DNS:localhost and IP:127.0.0.1), wronghost.pem/.key
    (signed by the CA for DNS:other.invalid only), selfsigned.pem/.key (for
    localhost and 127.0.0.1, signed by itself), and cadir/ (an empty
    directory, to point SSL_CERT_DIR at)."""

    def __init__(self, directory):
        if shutil.which("openssl") is None:
            harness.fail("the openssl command is missing (scripts/deps.sh test installs it)")
        self.dir = directory
        d = directory
        _openssl("req", "-x509", *_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                 "-subj", "/CN=aiod test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
        self._signed("good", "DNS:localhost,IP:127.0.0.1", serial="0x1001")
        self._signed("wronghost", "DNS:other.invalid", serial="0x1002")
        _openssl("req", "-x509", *_KEY, "-keyout", "selfsigned.key", "-out", "selfsigned.pem",
                 "-days", "2", "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", cwd=d)
        os.mkdir(os.path.join(d, "cadir"))

    def _signed(self, name, san, serial):
        d = self.dir
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s\n" % san)
        _openssl("req", *_KEY, "-keyout", name + ".key", "-out", name + ".csr",
                 "-subj", "/CN=%s" % name, cwd=d)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-set_serial", serial, "-days", "2", "-extfile", name + ".ext",
                 "-out", name + ".pem", cwd=d)

    def path(self, name):
        return os.path.join(self.dir, name)

    def trust_env(self):
        """The daemon's environment for trusting this CA only (the net plugin
        reads CURL_CA_BUNDLE, then SSL_CERT_FILE, and SSL_CERT_DIR)."""
        return {"CURL_CA_BUNDLE": self.path("ca.pem"), "SSL_CERT_FILE": self.path("ca.pem"),
                "SSL_CERT_DIR": self.path("cadir")}


class HTTPSServer(http.server.ThreadingHTTPServer):
    """A threaded HTTPS server on 127.0.0.1 serving `handler` with the
    certificate `name` of `certs`. `handshake_failures` counts TLS
    handshakes that failed (a client that refused the certificate)."""

    daemon_threads = True

    def __init__(self, handler, certs, name):
        super().__init__(("127.0.0.1", 0), handler)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs.path(name + ".pem"), certs.path(name + ".key"))
        self.lock = threading.Lock()
        self.paths, self.headers = [], []
        self.handshake_failures = 0
        self.handshake_failed = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def finish_request(self, request, client_address):
        # The handshake runs in the request's thread, not in the accept loop.
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.handshake_failures += 1
            self.handshake_failed.set()
            return
        self.RequestHandlerClass(tls, client_address, self)

    @property
    def port(self):
        return self.server_address[1]

    def url(self, path, host="127.0.0.1"):
        return "https://%s:%d%s" % (host, self.port, path)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.shutdown()
        self.server_close()
        return False
