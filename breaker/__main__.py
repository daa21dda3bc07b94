"""``python -m breaker``: the ``vix-breaker`` CLI, imported only here so that ``import breaker`` stays light."""

if __name__ == "__main__":
    from breaker.ops.cli import main

    main()
