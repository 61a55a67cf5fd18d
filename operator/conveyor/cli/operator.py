"""`conveyor operator`: run the operator (kopf) against the current kubeconfig or in-cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="serve only this namespace (repeatable; glob patterns allowed); default: all",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or in-cluster)")
    parser.add_argument(
        "--image-pull-policy",
        choices=["Always", "IfNotPresent", "Never"],
        default=os.environ.get("CONVEYOR_IMAGE_PULL_POLICY") or None,
        help="imagePullPolicy of job containers (env CONVEYOR_IMAGE_PULL_POLICY)",
    )
    parser.add_argument(
        "--default-image", help="image of jobs without one (env CONVEYOR_DEFAULT_IMAGE)"
    )
    parser.add_argument(
        "--helper-image",
        help="image with git, python3 and sh for source, cache and artifact steps "
        "(env CONVEYOR_HELPER_IMAGE)",
    )
    parser.add_argument("--run-as-user", type=int, help="uid of job containers (default 1000)")
    parser.add_argument(
        "--notify-url", help="POST gate and completion notifications here (env CONVEYOR_NOTIFY_URL)"
    )
    parser.add_argument(
        "--liveness", metavar="URL", help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument(
        "--webhook-url",
        help="serve the gate-approval admission webhook; the API server calls this https URL "
        "(e.g. https://127.0.0.1:9443)",
    )
    parser.add_argument("--webhook-cert", help="PEM certificate for the webhook (self-signed ok)")
    parser.add_argument("--webhook-key", help="PEM private key of --webhook-cert")
    parser.add_argument("--webhook-listen", help="address to listen on (default: the URL's host)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")


def run(args: argparse.Namespace) -> int:
    # kopf and the handlers are heavy: imported only when the operator really runs.
    import kopf  # noqa: PLC0415
    from kopf._core.engines.peering import Identity  # noqa: PLC0415 (not exported by kopf)

    import conveyor.operator.handlers  # noqa: PLC0415 - registers the handlers
    from conveyor.k8s.client import load_config  # noqa: PLC0415
    from conveyor.operator.settings import OperatorSettings  # noqa: PLC0415

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig  # kopf's own login reads it too
    overrides = {
        "default_image": args.default_image,
        "helper_image": args.helper_image,
        "run_as_user": args.run_as_user,
        "notify_url": args.notify_url,
    }
    if args.webhook_url and not (args.webhook_cert and args.webhook_key):
        print(
            "conveyor: error: --webhook-url needs --webhook-cert and --webhook-key", file=sys.stderr
        )
        return 2
    settings = OperatorSettings(
        webhook_url=args.webhook_url,
        webhook_cert=args.webhook_cert,
        webhook_key=args.webhook_key,
        webhook_listen=args.webhook_listen,
        namespaces=tuple(args.namespace),
        kubeconfig=args.kubeconfig,
        image_pull_policy=args.image_pull_policy,
        **{k: v for k, v in overrides.items() if v is not None},
    )
    try:
        asyncio.run(load_config(args.kubeconfig))
    except Exception as err:  # any loader error is a configuration problem of the user's
        print(f"conveyor: error: cannot load the kubeconfig: {err}", file=sys.stderr)
        return 1
    if settings.webhook_url:
        conveyor.operator.handlers.register_admission(settings)
    kopf.configure(verbose=args.verbose)
    logging.getLogger("conveyor").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:  # kopf logs every handler call at INFO: one line per pod event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        kopf.run(
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=True,
            # kopf would derive this from the login name, which a container running under an
            # arbitrary uid (no passwd entry) does not have.
            identity=Identity(f"conveyor@{socket.gethostname()}/{os.getpid()}"),
            liveness_endpoint=args.liveness,
            memo=kopf.Memo(config=settings),
        )
    except kopf.LoginError as err:
        print(f"conveyor: error: cannot log in to the cluster: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
