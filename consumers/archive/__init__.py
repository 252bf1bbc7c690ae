"""The archive: where the archiver's Avro objects are named, built, stored and verified.

`layout` names objects from Kafka positions and says when one rolls, `container` builds an
object's bytes, `storage` picks a backend (`local` files or `s3`), `verify` reads them back.
"""
