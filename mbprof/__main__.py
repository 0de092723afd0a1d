from mbprof.cli import main

raise SystemExit(main())
