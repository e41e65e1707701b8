use convkit::check::gradcheck::random_input;
use convkit::{models, Layer, Mode};

#[test]
fn forward_is_deterministic() {
    for name in ["small", "resnet8"] {
        let mut m = models::build::<f64>(name, None, 0).unwrap();
        let x = random_input(&m.batch_shape(2), 0);
        let a = m.net.forward(&x, Mode::Train);
        let b = m.net.forward(&x, Mode::Train);
        let c = m.net.forward(&x, Mode::Train);
        let d1: f64 = a.data().iter().zip(b.data()).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
        let d2: f64 = b.data().iter().zip(c.data()).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max);
        assert_eq!((d1, d2), (0.0, 0.0), "{name}");
    }
}
