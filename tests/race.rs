//! `convkit optim-race`: the races come out as the lecture describes, and the picture shows every path.

use convkit::race;

#[test]
fn races_tell_the_lecture_story_and_the_png_shows_every_path() {
    let lanes = race::run(300, 1e-3, 0).unwrap();
    let steps = |opt: &str, surface: &str| {
        lanes.iter().find(|l| l.optimizer == opt && l.surface.starts_with(surface)).unwrap().steps_to_tol
    };
    // Taco shell: SGD crawls along the shallow direction; momentum and Nesterov are faster; L-BFGS fastest.
    let sgd = steps("SGD", "ill-conditioned").unwrap();
    assert!(steps("SGD+momentum", "ill-conditioned").unwrap() < sgd);
    assert!(steps("Nesterov", "ill-conditioned").unwrap() < sgd);
    assert!(steps("L-BFGS", "ill-conditioned").unwrap() < 20);
    // Local minimum: plain SGD settles in it; momentum carries through to the global one.
    assert_eq!(steps("SGD", "local"), None);
    assert!(steps("SGD+momentum", "local").is_some());
    // Every first-order optimizer escapes the saddle; L-BFGS has no lane on noisy gradients.
    assert!(lanes.iter().filter(|l| l.surface == "saddle point").all(|l| l.steps_to_tol.is_some()));
    assert!(!lanes.iter().any(|l| l.optimizer == "L-BFGS" && l.surface.contains("noisy")));

    let d = tempfile::tempdir().unwrap();
    let png = d.path().join("race.png");
    race::plot(&lanes, &png, None).unwrap();
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1600, 1200));
    // Each contestant's colour is drawn, over many pixels: the paths are visible and tell apart.
    for (k, (r, g, b)) in race::COLOURS.iter().take(race::contestants().len()).enumerate() {
        let n = img.pixels().filter(|p| p.0 == [*r, *g, *b]).count();
        assert!(n > 200, "contestant {k} ({}) has {n} pixels", race::contestants()[k].0);
    }
}
