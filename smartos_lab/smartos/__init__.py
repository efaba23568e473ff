"""SmartOS on a QemuMachine: answers.json (:mod:`.answers`), boot specs (:mod:`.boot`),
the first-boot watcher (:mod:`.milestones`), the setup prompt driver (:mod:`.prompts`),
the console profile (:mod:`.profile`), root login (:mod:`.login`) and the Lab strategy
(:mod:`.bringup`)."""
