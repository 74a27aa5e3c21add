//! Server reflection per listener: each lists exactly the services its listener
//! serves, in both versions of the protocol (v1, and v1alpha for older grpcurl and
//! Postman).

use tonic_reflection::pb::{v1, v1alpha};
use tonic_reflection::server::{self, Builder, Error};

use crate::proto::activation_admin_service_server as activation_admin;
use crate::proto::audit_service_server as audit;
use crate::proto::medical_information_service_server as medical;
use crate::proto::qualification_service_server as qualification;
use crate::proto::site_admin_service_server as site_admin;
use crate::proto::transparency_service_server as transparency;

/// The reflection services themselves, listed on every listener that has them.
const REFLECTION: [&str; 2] = [
    v1::server_reflection_server::SERVICE_NAME,
    v1alpha::server_reflection_server::SERVICE_NAME,
];

/// What a listener serves beside reflection, and the descriptors that define it.
pub(super) struct Listing {
    services: &'static [&'static str],
    descriptor_sets: &'static [&'static [u8]],
}

/// The terminals' listener: patient data, the facility's own access log, health.
pub(super) const TERMINAL: Listing = Listing {
    services: &[
        qualification::SERVICE_NAME,
        medical::SERVICE_NAME,
        audit::SERVICE_NAME,
        tonic_health::pb::health_server::SERVICE_NAME,
    ],
    descriptor_sets: &[
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ],
};

/// The operators' listener: activations and the whole access log.
pub(super) const OPERATORS: Listing = Listing {
    services: &[
        audit::SERVICE_NAME,
        activation_admin::SERVICE_NAME,
        site_admin::SERVICE_NAME,
        transparency::SERVICE_NAME,
    ],
    descriptor_sets: &[crate::proto::FILE_DESCRIPTOR_SET],
};

impl Listing {
    fn builder(&self) -> Builder<'static> {
        // Both reflection descriptors in each version, so that either version can
        // describe every service it lists.
        let sets = self
            .descriptor_sets
            .iter()
            .copied()
            .chain([v1::FILE_DESCRIPTOR_SET, v1alpha::FILE_DESCRIPTOR_SET]);
        let builder = sets.fold(
            Builder::configure().include_reflection_service(false),
            Builder::register_encoded_file_descriptor_set,
        );
        self.services
            .iter()
            .chain(&REFLECTION)
            .fold(builder, |b, name| b.with_service_name(*name))
    }

    pub fn v1(
        &self,
    ) -> Result<server::v1::ServerReflectionServer<impl server::v1::ServerReflection>, Error> {
        self.builder().build_v1()
    }

    pub fn v1alpha(
        &self,
    ) -> Result<
        server::v1alpha::ServerReflectionServer<impl server::v1alpha::ServerReflection>,
        Error,
    > {
        self.builder().build_v1alpha()
    }
}
