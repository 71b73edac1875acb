//! The codec of Agora's gRPC servers: prost's, except that a request body
//! that is not valid protobuf is the caller's mistake. tonic answers it
//! with INTERNAL, which reads like a bug in the broker and makes clients
//! retry; this codec answers INVALID_ARGUMENT with the decoder's reason.
//! Only the generated servers use it (see `build.rs`): a client that cannot
//! decode a response keeps tonic's INTERNAL, which is right for it.

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder};

/// Prost's codec with request decoding errors mapped to INVALID_ARGUMENT.
#[derive(Debug, Clone, Default)]
pub struct RequestCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Codec for RequestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(self.0.decoder())
    }
}

/// Decodes one request; see [`RequestCodec`].
#[derive(Debug)]
pub struct RequestDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            Status::invalid_argument(format!(
                "the request is not a valid {}: {}",
                std::any::type_name::<U>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("message"),
                status.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
