//! Distances on the Earth's surface, for the cart tracking's out-of-area
//! check.
//!
//! Guarantee: [`distance_m`] is the great-circle (haversine) distance on a
//! sphere of the mean Earth radius: symmetric, zero for the same point, and
//! within 0.5 % of the WGS 84 ellipsoid's geodesic everywhere, far finer than
//! a radius of kilometres needs.

/// The mean Earth radius (IUGG), in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A position in WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
}

/// Metres between `a` and `b` along the Earth's surface.
pub fn distance_m(a: Point, b: Point) -> f64 {
    let (lat_a, lat_b) = (a.latitude.to_radians(), b.latitude.to_radians());
    let half_dlat = (lat_b - lat_a) / 2.0;
    let half_dlon = (b.longitude - a.longitude).to_radians() / 2.0;
    let h = half_dlat.sin().powi(2) + lat_a.cos() * lat_b.cos() * half_dlon.sin().powi(2);
    // min(1): rounding can push h a hair above 1 for antipodal points.
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAZA_DE_ARMAS: Point = Point { latitude: -33.4378, longitude: -70.6505 };

    #[test]
    fn the_same_point_is_zero_metres_away() {
        assert_eq!(distance_m(PLAZA_DE_ARMAS, PLAZA_DE_ARMAS), 0.0);
    }

    #[test]
    fn one_degree_of_latitude_is_about_111_km_either_way() {
        let north = Point { latitude: PLAZA_DE_ARMAS.latitude + 1.0, ..PLAZA_DE_ARMAS };

        let there = distance_m(PLAZA_DE_ARMAS, north);
        let back = distance_m(north, PLAZA_DE_ARMAS);

        assert!((there - 111_195.0).abs() < 10.0, "{there}");
        assert!((there - back).abs() < 1e-6);
    }

    #[test]
    fn santiago_to_valparaiso_is_about_100_km() {
        let valparaiso = Point { latitude: -33.0472, longitude: -71.6127 };

        let metres = distance_m(PLAZA_DE_ARMAS, valparaiso);

        // Published straight-line figures are 98 to 100 km.
        assert!((97_000.0..102_000.0).contains(&metres), "{metres}");
    }
}
